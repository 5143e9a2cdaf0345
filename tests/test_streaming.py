"""The departure stream: replay publishes departures, the consumer turns them into same-day features
in Feast's online store, and what it produced equals what dbt computes from the end-of-day file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest

from helpers import land_and_load, materialize_asset, materialize_dbt, module_home
from mlplatform.state import StatePaths
from mlplatform.defs.flights.stream_events import (
    Departure, Schedule, day_departures, day_schedules, departures_between, local_day, local_midnight, parse,
)
from mlplatform.defs.flights.stream_state import WINDOW_FEATURES, ORIGIN_VIEW, PLANE_VIEW, SameDayState
from mlplatform.streaming.events import DUPLICATE, FROM_THE_FUTURE, MALFORMED, OUT_OF_ORDER, UNKNOWN_ENTITY, BadEvent
from mlplatform.streaming.topic import SqliteTopic, topic_file

DAYS = ("2013-01-01", "2013-01-03")


def _replay_with_events(paths: StatePaths, through: str):
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer

    topic = SqliteTopic(topic_file(paths))
    Replayer(LandingZone(paths.landing, paths.quarantine), topic=topic).replay(through=date.fromisoformat(through))
    return topic


def _store_with_definitions(paths: StatePaths):
    from mlplatform.features.repo import apply_definitions, open_store

    apply_definitions(paths)
    return open_store(paths)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[StatePaths]:
    """Three days replayed with their events, built by dbt, the definitions applied, and the whole
    topic consumed."""
    from mlplatform.streaming.consumer import Consumer

    with module_home(tmp_path_factory, "streaming") as paths:
        topic = _replay_with_events(paths, DAYS[1])
        land_and_load(paths, DAYS[1])
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            assert materialize_dbt(instance, paths, reference=True).success
            assert materialize_dbt(instance, paths, first=DAYS[0], last=DAYS[1]).success
        consumer = Consumer(topic, _store_with_definitions(paths), batch_size=700)
        while consumer.poll().events:
            pass
        topic.close()
        yield paths


def _dbt_latest(paths: StatePaths, model: str, key: str):
    frames = [pq.read_table(p).to_pandas() for p in sorted((paths.exports / model).glob("date=*/data.parquet"))]
    import pandas as pd

    rows = pd.concat(frames).sort_values("event_timestamp")
    return rows.groupby(key).tail(1).set_index(key)


def test_replay_publishes_each_departure_once_in_event_order(built: StatePaths) -> None:
    topic = SqliteTopic(topic_file(built))
    published = [parse(e.payload) for e in topic.read(None, 100_000)]
    days = [date(2013, 1, d) for d in (1, 2, 3)]
    # Each day starts with its schedules, one per origin, before any departure of that local day.
    schedules = [(i, e) for i, e in enumerate(published) if isinstance(e, Schedule)]
    assert [e for _, e in schedules] == [s for d in days for s in day_schedules(d)]
    assert {e.origin for _, e in schedules} == {"EWR", "JFK", "LGA"}
    for i, schedule in schedules:
        assert all(local_day(e.actual_departure_utc) < schedule.day for e in published[:i] if isinstance(e, Departure))
        assert all(local_day(e.actual_departure_utc) >= schedule.day for e in published[i:] if isinstance(e, Departure))
    events = [e for e in published if isinstance(e, Departure)]
    # Every departure that left on one of the replayed local days, and only those: flights of the
    # third day leaving after its midnight wait for the next day's replay.
    expected = departures_between(local_midnight(days[0]), local_midnight(days[-1] + timedelta(days=1)))
    assert [e.flight_id for e in events] == [d.flight_id for d in expected]
    assert [e.order for e in events] == sorted(e.order for e in events)
    cancelled_or_late = sum(len(day_departures(d)) for d in days) - len(events)
    assert cancelled_or_late > 0  # the late ones of the last day, not yet departed on the replay's clock
    # A second replay over the same days publishes nothing.
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer

    Replayer(LandingZone(built.landing, built.quarantine), topic=topic).replay(through=days[-1])
    assert topic.published() == len(published)


def test_stream_produces_exactly_what_dbt_builds(built: StatePaths) -> None:
    from mlplatform.ingest.lake import Lake
    from mlplatform.streaming.consumer import CONSUMER
    from mlplatform.streaming.skew import compare_stream_with_dbt

    topic = SqliteTopic(topic_file(built))
    checkpoint = topic.checkpoint(CONSUMER)
    assert checkpoint.consumed == topic.published() and not topic.set_aside()
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        report = compare_stream_with_dbt(topic, Lake(built.exports), date.fromisoformat(day),
                                         checkpoint.state["watermark"])
        assert report.passed, report.mismatches[:3]
        assert report.compared > 1000


def test_online_store_holds_the_newest_dbt_row_of_every_origin_and_plane(built: StatePaths) -> None:
    from mlplatform.features.repo import open_store

    store = open_store(built)
    origins = _dbt_latest(built, "feat_origin_departures", "origin_code")
    online = store.get_online_features(features=[f"{ORIGIN_VIEW}:{f}" for f in WINDOW_FEATURES],
                                       entity_rows=[{"origin_code": o} for o in origins.index]).to_df()
    for _, row in online.iterrows():
        for feature in WINDOW_FEATURES:
            assert row[feature] == pytest.approx(origins.loc[row["origin_code"], feature])
    planes = _dbt_latest(built, "feat_plane_departures", "tail_number").head(200)
    online = store.get_online_features(features=[f"{PLANE_VIEW}:last_dep_delay"],
                                       entity_rows=[{"tail_number": t} for t in planes.index]).to_df()
    assert list(online["last_dep_delay"]) == list(planes["last_dep_delay"])


def test_same_day_stream_asset_reports_lag_and_its_checks_pass(built: StatePaths) -> None:
    with dg.instance_for_test() as instance:
        result = materialize_asset(instance, built, "same_day_stream", partition=DAYS[1])
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["stream_matches_dbt"].passed, checks["stream_matches_dbt"].metadata
    assert checks["stream_matches_dbt"].metadata["rows_compared"].value > 1000
    assert checks["stream_keeps_up"].passed
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["lag_events"].value == 0


def test_skew_check_names_the_row_where_stream_and_dbt_differ(built: StatePaths, tmp_path) -> None:
    """A stream that produced one wrong value (copied into a topic of its own) fails the check."""
    from mlplatform.ingest.lake import Lake
    from mlplatform.streaming.consumer import CONSUMER
    from mlplatform.streaming.skew import compare_stream_with_dbt
    from mlplatform.streaming.topic import Checkpoint

    source = SqliteTopic(topic_file(built))
    start, end = (local_midnight(date(2013, 1, d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (2, 3))
    rows = source.produced(ORIGIN_VIEW, start, end)
    rows[100] = {**rows[100], "mean_delay_last_10": rows[100]["mean_delay_last_10"] + 1}
    doctored = SqliteTopic(tmp_path / "doctored.db")
    watermark = source.checkpoint(CONSUMER).state["watermark"]
    doctored.commit(CONSUMER, Checkpoint("1", 1, {"watermark": watermark}, 0.0),
                    [], [{"view": ORIGIN_VIEW, "row": r, "position": "1"} for r in rows])
    report = compare_stream_with_dbt(doctored, Lake(built.exports), date(2013, 1, 2), watermark)
    assert not report.passed
    wrong = [m for m in report.mismatches if "feature" in m]
    assert wrong == [{"view": ORIGIN_VIEW, "origin_code": rows[100]["origin_code"], "at": rows[100]["event_timestamp"],
                      "feature": "mean_delay_last_10", "dbt": pytest.approx(rows[100]["mean_delay_last_10"] - 1),
                      "stream": rows[100]["mean_delay_last_10"]}]
    # The planes of that day were never streamed into this topic: named too.
    assert report.not_streamed > 0


def test_skew_check_names_a_backlog_the_stream_could_not_compute(built: StatePaths, tmp_path) -> None:
    """A day whose schedule never reached the consumer streams rows without a backlog (null); dbt has
    one for every row, so each such row is a difference, not a match."""
    from mlplatform.ingest.lake import Lake
    from mlplatform.streaming.consumer import CONSUMER
    from mlplatform.streaming.skew import compare_stream_with_dbt
    from mlplatform.streaming.topic import Checkpoint

    source = SqliteTopic(topic_file(built))
    start, end = (local_midnight(date(2013, 1, d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (2, 3))
    rows = source.produced(ORIGIN_VIEW, start, end)
    # The minute's last row is the one compared (rows of one minute before it are superseded).
    key = lambda r: (r["origin_code"], r["event_timestamp"])  # noqa: E731
    last = max(i for i, r in enumerate(rows) if key(r) == key(rows[50]))
    rows[last] = {**rows[last], "backlog": None}
    doctored = SqliteTopic(tmp_path / "no_schedule.db")
    watermark = source.checkpoint(CONSUMER).state["watermark"]
    doctored.commit(CONSUMER, Checkpoint("1", 1, {"watermark": watermark}, 0.0),
                    [], [{"view": ORIGIN_VIEW, "row": r, "position": "1"} for r in rows])
    report = compare_stream_with_dbt(doctored, Lake(built.exports), date(2013, 1, 2), watermark)
    wrong = [m for m in report.mismatches if "feature" in m]
    assert [(m["at"], m["feature"], m["stream"]) for m in wrong] == [(rows[last]["event_timestamp"], "backlog", None)]
    assert wrong[0]["dbt"] is not None


# --- bad events -------------------------------------------------------------------------------


def _payload(departure: Departure, **changes) -> str:
    data = json.loads(departure.to_json())
    data.update(changes)
    return json.dumps(data)


def test_parse_names_what_is_wrong_with_an_event() -> None:
    good = day_departures(date(2013, 1, 2))[0]
    assert parse(good.to_json()) == good
    cases = {
        "{not json": (MALFORMED, "not JSON"),
        "[1, 2]": (MALFORMED, "not a JSON object"),
        _payload(good, origin=None): (MALFORMED, "origin must be a non-empty string"),
        json.dumps({"flight_id": good.flight_id}): (MALFORMED, "missing origin"),
        _payload(good, dep_delay_minutes="5"): (MALFORMED, "dep_delay_minutes must be a whole number"),
        _payload(good, actual_departure_utc="yesterday"): (MALFORMED, "is not an ISO timestamp"),
        _payload(good, actual_departure_utc="2013-01-02T10:00:00"): (MALFORMED, "has no time zone"),
        _payload(good, dep_delay_minutes=good.dep_delay_minutes + 3): (MALFORMED, "plus the delay"),
        _payload(good, flight_id="ZZ1-EWR-20130102-0501"): (UNKNOWN_ENTITY, "is not a flight from"),
        _payload(good, origin="XYZ"): (UNKNOWN_ENTITY, "is not a flight from XYZ"),
        _payload(good, carrier="ZZ"): (UNKNOWN_ENTITY, "by ZZ"),
    }
    schedule = day_schedules(date(2013, 1, 2))[0]
    assert parse(schedule.to_json()) == schedule

    def bad_schedule(**changes) -> str:
        return json.dumps({**json.loads(schedule.to_json()), **changes})

    cases.update({
        bad_schedule(kind="arrival"): (MALFORMED, "kind='arrival' is not an event this stream carries"),
        json.dumps({"kind": "schedule", "origin": "EWR"}): (MALFORMED, "schedule missing day, scheduled_departures_utc"),
        bad_schedule(day="2/1/2013"): (MALFORMED, "day must be a date"),
        bad_schedule(scheduled_departures_utc="10:00"): (MALFORMED, "must be a list of ISO timestamps"),
        bad_schedule(scheduled_departures_utc=["2013-01-02T10:00:00Z", "soon"]): (MALFORMED, "is not an ISO timestamp"),
        bad_schedule(scheduled_departures_utc=["2013-01-03T12:00:00Z"]): (MALFORMED, "on another local day"),
        bad_schedule(day="2014-01-02", scheduled_departures_utc=[]): (UNKNOWN_ENTITY, "outside the data"),
    })
    for payload, (reason, words) in cases.items():
        with pytest.raises(BadEvent) as caught:
            parse(payload)
        assert caught.value.reason == reason and words in caught.value.detail, (payload, caught.value)


def test_backlog_counts_the_flights_of_the_day_due_and_not_left() -> None:
    """The origin's backlog after each departure: flights of the local day it left on scheduled by
    then, less those that have left (early ones included, cancelled ones never); none without the
    day's schedule. A schedule twice, after its day's departures or days ahead is set aside."""
    from datetime import datetime, timezone

    def utc(hhmm: str, day: int = 2) -> datetime:
        return datetime(2013, 1, day, int(hhmm[:2]), int(hhmm[2:]), tzinfo=timezone.utc)

    def departure(flight: str, origin: str, scheduled: datetime, left: datetime) -> Departure:
        return Departure(flight, origin, "ORD", None, scheduled, left, int((left - scheduled).total_seconds() // 60), "UA")

    state = SameDayState()
    assert state.apply(Schedule("EWR", date(2013, 1, 2), (utc("1000"), utc("1005"), utc("1010"), utc("1020")))) == []
    backlog = []
    for event in (departure("n", "EWR", utc("0450"), utc("0530")),   # of the 1st, left at 00:30 local: 0
                  departure("a", "EWR", utc("1000"), utc("1007")),   # 10:00 and 10:05 due, a left: 1
                  departure("b", "EWR", utc("1020"), utc("1015")),   # three due, two left (b early): 1
                  departure("c", "EWR", utc("1005"), utc("1030")),   # four due, three left, 10:10 never: 1
                  departure("x", "LGA", utc("1000"), utc("1031"))):  # LGA has no schedule
        backlog += [row["backlog"] for view, row in state.apply(event) if view == ORIGIN_VIEW]
    assert backlog == [0.0, 1.0, 1.0, 1.0, None]
    assert state.departed == {"EWR:2013-01-01": 1, "EWR:2013-01-02": 3, "LGA:2013-01-02": 1}

    before = state.to_dict()
    for schedule, reason in ((Schedule("EWR", date(2013, 1, 2), (utc("1100"),)), DUPLICATE),
                             (Schedule("EWR", date(2013, 1, 1), (utc("1100", 1),)), OUT_OF_ORDER),
                             (Schedule("JFK", date(2013, 1, 9), (utc("1100", 9),)), FROM_THE_FUTURE)):
        with pytest.raises(BadEvent) as caught:
            state.apply(schedule)
        assert caught.value.reason == reason and schedule.origin in caught.value.detail
    assert state.to_dict() == before
    assert SameDayState.from_dict(json.loads(json.dumps(before))).to_dict() == before


def test_bad_events_are_set_aside_counted_and_change_no_feature(tmp_path, monkeypatch) -> None:
    from mlplatform.state import HOME_ENV
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.defs.flights.stream_state import ORIGIN, window_row

    paths = StatePaths.resolve(tmp_path / "home").ensure()
    monkeypatch.setenv(HOME_ENV, str(paths.home))
    store = _store_with_definitions(paths)
    topic = SqliteTopic(topic_file(paths))
    good = departures_between(local_midnight(date(2013, 1, 2)), local_midnight(date(2013, 1, 3)))
    first, later = good[:300], good[300:]

    def another_flight(d: Departure, **changes) -> str:  # a flight key nobody used, same origin and time
        return _payload(d, flight_id="ZZ9999-" + d.flight_id.split("-", 1)[1], carrier="ZZ", **changes)

    newest = first[-1]
    topic.publish([d.to_json() for d in first])
    topic.publish([
        "{not json",                                                    # malformed
        first[5].to_json(),                                             # duplicate
        _payload(newest, flight_id=newest.flight_id.replace("-", "X", 1)),  # unknown flight
        another_flight(newest, dep_delay_minutes=newest.dep_delay_minutes + 420,
                       actual_departure_utc=(newest.actual_departure_utc + timedelta(hours=7))
                       .strftime("%Y-%m-%dT%H:%M:%SZ")),               # from the future
    ])
    topic.publish([d.to_json() for d in later])
    topic.publish([another_flight(first[10])])  # out of order: its origin has had later departures
    consumer = Consumer(topic, store, batch_size=250)
    while consumer.poll().events:
        pass

    set_aside = topic.set_aside()
    assert [b["reason"] for b in set_aside] == [MALFORMED, DUPLICATE, UNKNOWN_ENTITY, FROM_THE_FUTURE, OUT_OF_ORDER]
    assert all(b["detail"] and b["payload"] for b in set_aside)
    restarted = Consumer(topic, store)  # what was committed, read back
    assert restarted.checkpoint.consumed == topic.published() == len(good) + 5
    # The features are those of the good events alone, each applied once.
    clean = SameDayState()
    for d in good:
        clean.apply(d)
    assert restarted.state.to_dict() == clean.to_dict()
    online = store.get_online_features(features=[f"{ORIGIN_VIEW}:{f}" for f in WINDOW_FEATURES],
                                       entity_rows=[{"origin_code": o} for o in ("EWR", "JFK", "LGA")]).to_df()
    for _, row in online.iterrows():
        expected = window_row(ORIGIN, row["origin_code"], None, clean.delays[f"origin:{row['origin_code']}"])
        assert [row[f] for f in WINDOW_FEATURES] == pytest.approx([expected[f] for f in WINDOW_FEATURES])


# --- a consumer killed mid-day ----------------------------------------------------------------


def test_consumer_killed_mid_day_restarts_where_it_committed(tmp_path) -> None:
    """kill -9 between a push and its commit; a plain restart ends with the online features of an
    uninterrupted run, every event consumed once and nothing set aside."""
    from fault_helpers import BIN, env_for, mlplatform
    from mlplatform.faults import kill_at_point
    from mlplatform.features.repo import open_store

    home = tmp_path / "home"
    paths = StatePaths.resolve(home).ensure()
    import os

    os.environ["MLPLATFORM_HOME"] = str(home)
    try:
        topic = _replay_with_events(paths, "2013-01-02")
        _store_with_definitions(paths)
        kill_at_point([str(BIN / "mlplatform"), "consume", "--batch-size", "400"], env_for(home), home,
                      "stream_pushed", log=tmp_path / "killed.log", timeout_s=300)
        assert topic.checkpoint("same_day_features").consumed == 0  # killed before its first commit
        done = mlplatform(home, "consume", "--batch-size", "400")
        assert done.returncode == 0, done.stderr
        checkpoint = topic.checkpoint("same_day_features")
        assert checkpoint.consumed == topic.published() and not topic.set_aside()

        uninterrupted = SameDayState()
        rows = {}
        for entry in topic.read(None, 100_000):
            for view, row in uninterrupted.apply(parse(entry.payload)):
                rows[(view, row.get("origin_code") or row.get("tail_number"))] = row
        assert SameDayState.from_dict(checkpoint.state).to_dict() == uninterrupted.to_dict()
        store = open_store(paths)
        origins = sorted(k for v, k in rows if v == ORIGIN_VIEW)
        online = store.get_online_features(features=[f"{ORIGIN_VIEW}:{f}" for f in WINDOW_FEATURES],
                                           entity_rows=[{"origin_code": o} for o in origins]).to_df()
        for _, row in online.iterrows():
            expected = rows[(ORIGIN_VIEW, row["origin_code"])]
            assert [row[f] for f in WINDOW_FEATURES] == pytest.approx([expected[f] for f in WINDOW_FEATURES])
        planes = sorted(k for v, k in rows if v == PLANE_VIEW)
        online = store.get_online_features(features=[f"{PLANE_VIEW}:last_dep_delay"],
                                           entity_rows=[{"tail_number": t} for t in planes]).to_df()
        assert list(online["last_dep_delay"]) == [rows[(PLANE_VIEW, t)]["last_dep_delay"] for t in planes]
        # The history the skew check reads holds each row once.
        start, end = "2013-01-01", "2013-01-04"
        produced = topic.produced(PLANE_VIEW, start, end)
        assert len(produced) == len({(r["tail_number"], r["event_timestamp"]) for r in produced})
    finally:
        os.environ.pop("MLPLATFORM_HOME", None)


# --- the production profile's topic: Redis Streams ------------------------------------------------


def test_redis_stream_topic_feeds_the_consumer_and_keeps_its_position(tmp_path, monkeypatch) -> None:
    from servers import start_redis

    from mlplatform.profile import Profile
    from mlplatform.state import HOME_ENV
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.streaming.topic import RedisTopic, open_topic

    redis = start_redis(tmp_path)
    try:
        paths = StatePaths.resolve(tmp_path / "home").ensure()
        monkeypatch.setenv(HOME_ENV, str(paths.home))
        profile = Profile("production", "postgresql://u:p@127.0.0.1:5432/db", redis.url)
        topic = open_topic(paths, profile)
        assert isinstance(topic, RedisTopic)
        day = departures_between(local_midnight(date(2013, 1, 2)), local_midnight(date(2013, 1, 3)))
        topic.publish([d.to_json() for d in day[:500]] + ["{not json"])
        store = _store_with_definitions(paths)
        consumer = Consumer(topic, store, batch_size=200)
        while consumer.poll().events:
            pass
        assert consumer.lag() == 0
        topic.publish([d.to_json() for d in day[500:]])
        resumed = Consumer(open_topic(paths, profile), store, batch_size=300)  # a new process, say
        assert resumed.checkpoint.consumed == 501 and resumed.lag() == len(day) - 500
        polls = []
        while (report := resumed.poll()).events:
            polls.append(report.events)
        assert sum(polls) == len(day) - 500  # only what came after the committed position
        assert [b["reason"] for b in topic.set_aside()] == [MALFORMED]
        clean = SameDayState()
        for d in day:
            clean.apply(d)
        assert resumed.state.to_dict() == clean.to_dict()
        start, end = (local_midnight(date(2013, 1, d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (2, 3))
        assert len(topic.produced(ORIGIN_VIEW, start, end)) == len(day)
    finally:
        redis.stop()


def test_a_consumer_whose_redis_restarted_empty_keeps_its_counts_and_reads_the_new_events(tmp_path, monkeypatch) -> None:
    """Redis killed and started again without its data (it keeps no snapshot here): the stream and
    the consumer's commit are gone. The consumer that kept running says so, keeps what it counted and
    reads the events published since from the first. A consumer started after such a restart starts
    from the copy of the last commit in the state directory. Every departure counts once."""
    from servers import start_redis

    from mlplatform.profile import Profile
    from mlplatform.state import HOME_ENV
    from mlplatform.streaming.consumer import KEPT_COPY, Consumer
    from mlplatform.streaming.topic import open_topic

    redis = start_redis(tmp_path)
    try:
        paths = StatePaths.resolve(tmp_path / "home").ensure()
        monkeypatch.setenv(HOME_ENV, str(paths.home))
        profile = Profile("production", "postgresql://u:p@127.0.0.1:5432/db", redis.url)
        store, kept = _store_with_definitions(paths), paths.stream / KEPT_COPY
        departures = departures_between(local_midnight(date(2013, 1, 2)), local_midnight(date(2013, 1, 3)))
        day = [d.to_json() for d in departures]
        thirds = [day[:300], day[300:600], day[600:]]

        def drain(consumer: Consumer) -> None:
            while consumer.poll().events:
                pass

        topic = open_topic(paths, profile)
        topic.publish(thirds[0])
        consumer = Consumer(topic, store, batch_size=300, kept_copy=kept)
        drain(consumer)
        redis.stop()
        redis.start()
        topic = open_topic(paths, profile)
        topic.publish(thirds[1])
        consumer.topic = topic  # the same process, reconnected
        first = consumer.poll()
        assert first.reset and "the 300 events taken before still count" in first.reset
        drain(consumer)
        assert consumer.checkpoint.consumed == 300 and consumer.lag() == 0

        # Lost again, and the consumer's process with it: a new one starts from the kept copy.
        redis.stop()
        redis.start()
        topic = open_topic(paths, profile)
        topic.publish(thirds[2])
        restarted = Consumer(topic, store, batch_size=300, kept_copy=kept)
        assert restarted.poll().reset
        drain(restarted)
        clean = SameDayState()
        for departure in departures:
            clean.apply(departure)
        assert restarted.state.to_dict() == clean.to_dict()  # every departure counted once
        assert restarted.poll().reset is None and restarted.lag() == 0
    finally:
        redis.stop()


def test_a_consumer_whose_state_directory_refuses_the_copy_of_its_commit_goes_on(tmp_path, monkeypatch, caplog) -> None:
    """The kept copy is a backup: with `stream/` read-only (a read-only mount), the commits go to
    Redis, the consumer says once that it cannot keep the copy and counts every event; once the
    folder is writable again the copy follows the topic's commit."""
    import json
    import logging
    import subprocess

    from fault_helpers import mount_tmpfs
    from servers import start_redis

    from mlplatform.profile import Profile
    from mlplatform.state import HOME_ENV
    from mlplatform.streaming.consumer import KEPT_COPY, Consumer
    from mlplatform.streaming.topic import open_topic

    redis = start_redis(tmp_path)
    paths = StatePaths.resolve(tmp_path / "home").ensure()
    paths.stream.mkdir(parents=True, exist_ok=True)
    mount_tmpfs(paths.stream, "1m")
    try:
        monkeypatch.setenv(HOME_ENV, str(paths.home))
        profile = Profile("production", "postgresql://u:p@127.0.0.1:5432/db", redis.url)
        store, kept = _store_with_definitions(paths), paths.stream / KEPT_COPY
        departures = departures_between(local_midnight(date(2013, 1, 2)), local_midnight(date(2013, 1, 3)))
        day = [d.to_json() for d in departures]
        topic = open_topic(paths, profile)
        topic.publish(day[:600])
        subprocess.run(["mount", "-o", "remount,ro", str(paths.stream)], check=True)
        consumer = Consumer(topic, store, batch_size=300, kept_copy=kept)
        with caplog.at_level(logging.WARNING, logger="mlplatform.streaming.consumer"):
            assert consumer.poll().events == 300 and consumer.poll().events == 300
        said = [r.getMessage() for r in caplog.records if "cannot keep a copy" in r.getMessage()]
        assert len(said) == 1 and str(kept) in said[0] and "the stream goes on" in said[0]
        assert not kept.exists() and topic.checkpoint(consumer.name).consumed == 600 and consumer.lag() == 0
        subprocess.run(["mount", "-o", "remount,rw", str(paths.stream)], check=True)
        topic.publish(day[600:])
        while consumer.poll().events:
            pass
        assert consumer.copy_problem is None
        assert json.loads(kept.read_text())["consumed"] == len(day) == topic.checkpoint(consumer.name).consumed
        clean = SameDayState()
        for departure in departures:
            clean.apply(departure)
        assert consumer.state.to_dict() == clean.to_dict()
    finally:
        subprocess.run(["umount", "-l", str(paths.stream)], capture_output=True)
        redis.stop()


def test_training_reads_same_day_features_as_of_lead_minutes_before_departure(built: StatePaths) -> None:
    """`retrieve_same_day` joins each flight with the rows in force `lead` minutes before its
    scheduled departure: the newest departure at its origin (and of its plane) by then, none later."""
    import pandas as pd

    from mlplatform.features.repo import open_store
    from mlplatform.features.training import labeled_rows, retrieve_same_day
    from mlplatform.ingest.lake import Lake

    flights, _ = labeled_rows(Lake(built.exports), "2013-01-02", "2013-01-02")
    flights = flights.sample(300, random_state=1)
    same_day = retrieve_same_day(open_store(built), flights, lead_minutes=60).set_index("flight_id")
    origins = pd.concat(pq.read_table(p).to_pandas()
                        for p in sorted((built.exports / "feat_origin_departures").glob("date=*/data.parquet")))
    planes = pd.concat(pq.read_table(p).to_pandas()
                       for p in sorted((built.exports / "feat_plane_departures").glob("date=*/data.parquet")))
    for flight in flights.itertuples():
        moment = flight.scheduled_departure_utc - pd.Timedelta(minutes=60)
        in_force = origins[(origins.origin_code == flight.origin_code) & (origins.event_timestamp <= moment)]
        expected = in_force.sort_values("event_timestamp").iloc[-1]["mean_delay_last_10"]
        assert same_day.loc[flight.flight_id, "origin_departures__mean_delay_last_10"] == pytest.approx(expected)
        flown = planes[(planes.tail_number == flight.tail_number) & (planes.event_timestamp <= moment)]
        got = same_day.loc[flight.flight_id, "plane_departures__last_dep_delay"]
        if flown.empty:
            assert pd.isna(got)
        else:
            assert got == flown.sort_values("event_timestamp").iloc[-1]["last_dep_delay"]


def test_a_full_disk_under_the_topic_is_an_os_error_naming_the_file(tmp_path) -> None:
    """SQLite's "database or disk is full" becomes the OSError the command line reports (exit 2,
    naming the file); what was committed before stays readable."""
    import errno
    import subprocess

    from fault_helpers import mount_tmpfs

    where = tmp_path / "small"
    mount_tmpfs(where, "256k")
    try:
        topic = SqliteTopic(where / "departures.db")
        topic.publish(["first"])
        with pytest.raises(OSError) as caught:
            for _ in range(100):
                topic.publish(["x" * 10_000] * 10)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(where / "departures.db")
        assert topic.read(None, 1)[0].payload == "first"
        topic.close()
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_topic_is_an_os_error_naming_the_file(tmp_path) -> None:
    import errno
    import subprocess

    from fault_helpers import mount_tmpfs

    where = tmp_path / "ro"
    mount_tmpfs(where, "4m")
    try:
        topic = SqliteTopic(where / "departures.db")
        topic.publish(["first"])
        topic.close()
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        with pytest.raises(OSError) as caught:
            SqliteTopic(where / "departures.db").publish(["second"])
        assert caught.value.errno == errno.EROFS and caught.value.filename == str(where / "departures.db")
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_consume_before_the_feature_definitions_says_what_to_do(tmp_path) -> None:
    from fault_helpers import mlplatform

    done = mlplatform(tmp_path / "home", "consume")
    assert done.returncode == 2
    assert "feature definitions are not applied yet" in done.stderr and "mlplatform pipeline" in done.stderr


def test_a_replay_killed_between_a_days_events_and_its_files_publishes_them_once(tmp_path) -> None:
    """kill -9 after the day's departures are published and before its files land; a plain rerun
    lands the files and publishes nothing again."""
    from fault_helpers import BIN, env_for, mlplatform
    from mlplatform.faults import kill_at_point

    home = tmp_path / "home"
    paths = StatePaths.resolve(home).ensure()
    kill_at_point([str(BIN / "mlplatform"), "replay", "--days", "1"], env_for(home), home,
                  "replay_events_published", log=tmp_path / "killed.log", timeout_s=120)
    topic = SqliteTopic(topic_file(paths))
    departed = len(departures_between(local_midnight(date(2013, 1, 1)), local_midnight(date(2013, 1, 2))))
    departed += len(day_schedules(date(2013, 1, 1)))  # and the day's schedules, one per origin
    assert topic.published() == departed
    assert not (paths.landing / "flights" / "2013-01-01.csv").exists()
    done = mlplatform(home, "replay", "--days", "1")
    assert done.returncode == 0, done.stderr
    assert (paths.landing / "flights" / "2013-01-01.csv").exists()
    assert topic.published() == departed
