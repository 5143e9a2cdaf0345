"""Bad landing names, cut files and failed work that is tried again, on real files and a real instance."""

from __future__ import annotations

import time
from datetime import date

import pytest

from helpers import materialize_raw
from mlplatform.automation.downstream import plan_downstream_run
from mlplatform.automation.landing import plan_landing_runs
from mlplatform.automation.retries import Attempt, RetryPolicy
from mlplatform.ingest.replay import Replayer


def test_misnamed_landing_files_are_quarantined_and_the_others_flow(zone) -> None:
    Replayer(zone).replay(through=date(2013, 1, 2))
    good = zone.file("flights", "2013-01-02").read_bytes()
    for name in ("2014-01-01.csv", "2013-02-30.csv", "jan-5.csv", "2013-1-3.csv"):
        (zone.root / "flights" / name).write_bytes(good)

    plan = plan_landing_runs(zone, {})
    assert sorted(p.rsplit("/", 1)[-1] for p in plan.quarantined) == [
        "2013-02-30.csv", "2013-1-3.csv", "2014-01-01.csv", "jan-5.csv"]
    assert sorted(r.partition_key or "reference" for r in plan.run_requests) == ["2013-01-01", "2013-01-02", "reference"]
    reasons = {q.reason["original_path"].rsplit("/", 1)[-1]: q.reason for q in
               [*zone.quarantined("flights", "2014-01-01"), *zone.quarantined("flights", "2013-02-30")]}
    assert reasons["2014-01-01.csv"]["kind"] == "file_name"
    assert "is not a day of the feed" in reasons["2013-02-30.csv"]["problem"]
    assert "2013-01-01 to 2013-12-31" in reasons["2013-02-30.csv"]["problem"]


def test_a_file_cut_at_a_line_boundary_fails_its_manifest(instance, paths, zone, lake) -> None:
    Replayer(zone).replay(through=date(2013, 1, 2))
    source = zone.file("flights", "2013-01-02")
    lines = source.read_bytes().splitlines(keepends=True)
    source.write_bytes(b"".join(lines[:801]))  # the header and 800 whole flights of 943: valid CSV

    result = materialize_raw(instance, paths, "flights", "2013-01-02")
    assert not result.success
    [quarantined] = zone.quarantined("flights", "2013-01-02")
    assert quarantined.reason["kind"] == "incomplete"
    assert "800 data rows" in quarantined.reason["problem"] and "says" in quarantined.reason["problem"]
    assert "943 rows" in quarantined.reason["problem"]
    assert quarantined.path.with_name(quarantined.path.name + ".manifest.json").exists()  # kept with its file
    assert lake.days("flights") == []

    # The feed delivers it again, whole, with its manifest: it loads.
    zone.deliver("flights", "2013-01-02", b"".join(lines))
    assert materialize_raw(instance, paths, "flights", "2013-01-02").success
    assert lake.read("flights", "2013-01-02").num_rows == 943


def test_a_malformed_manifest_is_named(instance, paths, zone) -> None:
    Replayer(zone).replay(through=date(2013, 1, 1))
    zone.manifest_path("flights", "2013-01-01").write_text("{not json")
    assert not materialize_raw(instance, paths, "flights", "2013-01-01").success
    [quarantined] = zone.quarantined("flights", "2013-01-01")
    assert "is not JSON with bytes, rows and sha256" in quarantined.reason["problem"]


def test_retry_policy_backs_off_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_seconds=30)
    assert policy.wait_seconds(0, 0, 100) == 0
    assert policy.wait_seconds(1, 100, 110) == 20
    assert policy.wait_seconds(2, 100, 110) == 50  # doubled
    assert policy.wait_seconds(2, 100, 200) == 0
    assert policy.wait_seconds(3, 100, 10_000) is None
    assert Attempt.parse(7) == Attempt(7, 1, 0.0)  # a cursor from before retries
    assert Attempt(7, 2, 1.0).next(7, 5.0) == Attempt(7, 3, 5.0)
    assert Attempt(7, 2, 1.0).next(8, 5.0) == Attempt(8, 1, 5.0)  # new data starts the count again


def test_a_failed_refresh_is_requested_again_after_its_backoff_then_given_up(instance, paths, zone) -> None:
    Replayer(zone).replay(through=date(2013, 1, 1))
    for table in ("airports", "airlines", "planes"):
        assert materialize_raw(instance, paths, table).success
    first = plan_downstream_run(instance, {})
    assert first.run_request.job_name == "reference_refresh"
    # Its run failed (nothing was built): the next tick waits for the backoff ...
    now = time.time()
    waiting = plan_downstream_run(instance, first.attempted, now=now + 5)
    assert waiting.run_request is None and "trying again in" in waiting.reason
    # ... then asks again, under a new run key (the sensor would skip the old one) ...
    again = plan_downstream_run(instance, first.attempted, now=now + 31)
    assert again.run_request is not None and again.run_request.run_key != first.run_request.run_key
    # ... and after the last attempt says so, and leaves it to a rerun.
    spent = {**again.attempted, "reference": [again.attempted["reference"][0], 3, now]}
    given_up = plan_downstream_run(instance, spent, now=now + 10_000)
    assert given_up.run_request is None and given_up.given_up == ["reference"]
    assert "mlplatform pipeline" in given_up.reason


def test_a_range_tried_again_is_tried_day_by_day(instance, paths, zone) -> None:
    """The landing sensor asks for consecutive days in one run; when that run ended without storing
    them (a bad file failed it, or it died), each day is asked for alone, so a bad day fails by itself."""
    from mlplatform.automation.landing import already_stored
    from mlplatform.resources import PlatformState

    Replayer(zone).replay(through=date(2013, 1, 3))
    stored = already_stored(instance, PlatformState(home=str(paths.home)))
    first = [r for r in plan_landing_runs(zone, {}, stored, ranges=True).run_requests if r.job_name == "raw_daily"]
    assert [(r.partition_key, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in first] == [(None, "2013-01-01", "2013-01-03")]
    seen = plan_landing_runs(zone, {}, stored, ranges=True).seen
    again = plan_landing_runs(zone, seen, stored, ranges=True, now=time.time() + 100).run_requests
    assert sorted(r.partition_key for r in again if r.job_name == "raw_daily") == ["2013-01-01", "2013-01-02", "2013-01-03"]


def test_a_requested_file_whose_run_died_is_requested_again(instance, paths, zone) -> None:
    from mlplatform.automation.landing import already_stored
    from mlplatform.resources import PlatformState

    Replayer(zone).replay(through=date(2013, 1, 1))
    state = PlatformState(home=str(paths.home))
    stored = already_stored(instance, state)
    first = plan_landing_runs(zone, {}, stored)
    assert {r.partition_key for r in first.run_requests} == {None, "2013-01-01"}
    now = time.time()
    # No run is in progress, nothing was stored: the run died. Not before the backoff ...
    assert plan_landing_runs(zone, first.seen, stored, now=now + 1).run_requests == []
    # ... nor while a raw run is in progress ...
    assert plan_landing_runs(zone, first.seen, stored, now=now + 100, runs_in_progress=True).run_requests == []
    # ... then again, under new run keys.
    again = plan_landing_runs(zone, first.seen, stored, now=now + 100)
    assert {r.partition_key for r in again.run_requests} == {None, "2013-01-01"}
    assert not {r.run_key for r in again.run_requests} & {r.run_key for r in first.run_requests}
    # Once stored, a file is not requested again.
    assert materialize_raw(instance, paths, "flights", "2013-01-01").success
    assert materialize_raw(instance, paths, "weather", "2013-01-01").success
    later = plan_landing_runs(zone, again.seen, already_stored(instance, state), now=now + 10_000)
    assert [r.partition_key for r in later.run_requests] == [None]  # the reference tables only


@pytest.mark.parametrize("min_free_mb, expected", [(10**9, "MB free; this command needs at least")])
def test_a_nearly_full_state_directory_is_refused_before_any_write(tmp_path, capsys, monkeypatch, min_free_mb,
                                                                   expected) -> None:
    from mlplatform.cli import main

    home = tmp_path / "home"
    monkeypatch.setenv("MLPLATFORM_MIN_FREE_MB", str(min_free_mb))
    assert main(["--home", str(home), "replay", "--days", "1"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(home) in err and "MLPLATFORM_MIN_FREE_MB" in err
    assert not (home / "landing" / "flights").exists()


def test_queued_runs_that_no_daemon_will_launch_are_canceled_with_the_reason(instance, paths) -> None:
    """Runs the sensors requested wait QUEUED for the daemon; with `dagster dev` stopped before it
    launched them, a headless pipeline would wait on them for good. They are canceled, saying why,
    unless a daemon may still launch them (its heartbeat recent, and not from a stopped dev's)."""
    import dagster as dg
    # What a sensor's request and the daemon write, written here as they do (no public API makes them).
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._daemon.controller import DEFAULT_HEARTBEAT_INTERVAL_SECONDS
    from dagster._daemon.types import DaemonHeartbeat

    from mlplatform.automation.recovery import HEARTBEAT_INTERVAL_S, QUEUE_DAEMON, cancel_queued_runs_without_a_daemon
    from mlplatform.dev import DEV_STOPPED

    # The platform's copy of the daemon's heartbeat interval (Dagster's constant is private).
    assert HEARTBEAT_INTERVAL_S == DEFAULT_HEARTBEAT_INTERVAL_SECONDS

    @dg.op
    def step() -> None:
        pass

    @dg.job
    def requested() -> None:
        step()

    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("flights"), "__repository__"),
                             "requested")

    def queue():
        return instance.create_run_for_job(requested, status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin)

    def status(run):
        return instance.get_run_by_id(run.run_id).status

    home = paths.ensure().home
    first = queue()
    beat = time.time()
    instance.add_daemon_heartbeat(DaemonHeartbeat(beat, QUEUE_DAEMON, "daemon-1", None))
    assert cancel_queued_runs_without_a_daemon(instance, home, now=beat + 30) == []  # alive: its queue
    assert status(first) == dg.DagsterRunStatus.QUEUED
    [(run, message)] = cancel_queued_runs_without_a_daemon(instance, home, now=beat + 600)
    assert run.run_id == first.run_id and "the daemon was last seen 600 s ago" in message
    assert status(first) == dg.DagsterRunStatus.CANCELED
    # `mlplatform dev` stopped after its daemon's last heartbeat: its queue is gone at once.
    second = queue()
    (home / DEV_STOPPED).write_text(str(beat + 5))
    [(_, message)] = cancel_queued_runs_without_a_daemon(instance, home, now=beat + 30)
    assert "`mlplatform dev`, whose daemon launched runs, stopped 25 s ago" in message
    assert status(second) == dg.DagsterRunStatus.CANCELED
    # The stopping daemon's last heartbeat, written just after dev marked the stop, is still its own.
    late = queue()
    instance.add_daemon_heartbeat(DaemonHeartbeat(beat + 8, QUEUE_DAEMON, "daemon-1", None))
    [(_, message)] = cancel_queued_runs_without_a_daemon(instance, home, now=beat + 30)
    assert "`mlplatform dev`, whose daemon launched runs, stopped 25 s ago" in message
    assert status(late) == dg.DagsterRunStatus.CANCELED
    # A dev started again at once holds the state directory: a heartbeat that soon is its daemon's.
    from mlplatform.dev import DEV_LOCK
    from mlplatform.locks import hold_alone

    again = hold_alone(home / DEV_LOCK, "mlplatform dev", {})
    try:
        kept = queue()
        assert cancel_queued_runs_without_a_daemon(instance, home, now=beat + 30) == []
        assert status(kept) == dg.DagsterRunStatus.QUEUED
    finally:
        again.close()
    [(_, message)] = cancel_queued_runs_without_a_daemon(instance, home, now=beat + 30)  # and once it stopped
    assert status(kept) == dg.DagsterRunStatus.CANCELED
    # A dev started again: its daemon's heartbeats are newer than the stop.
    third = queue()
    instance.add_daemon_heartbeat(DaemonHeartbeat(beat + 40, QUEUE_DAEMON, "daemon-2", None))
    assert cancel_queued_runs_without_a_daemon(instance, home, now=beat + 50) == []
    instance.wipe_daemon_heartbeats()
    [(_, message)] = cancel_queued_runs_without_a_daemon(instance, home)
    assert "no daemon has run on this instance" in message and "canceled by mlplatform" in message
    assert status(third) == dg.DagsterRunStatus.CANCELED
