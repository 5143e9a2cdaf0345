"""The feature stage through Feast: definitions, training sets, online features, skew."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers import (
    materialization_metadata,
    plain,
    module_home,
    build_through,
    materialize_asset,
    warehouse_table,
)
from mlplatform.features.service import SERVICE_NAME
from mlplatform.state import StatePaths

LAST_DAY = "2013-01-10"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Ten days through dbt; definitions applied; the last two days online; a training set."""
    with module_home(tmp_path_factory, "features") as paths:
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            build_through(instance, paths, LAST_DAY)
            results = {"definitions": materialize_asset(instance, paths, "feature_definitions")}
            results["definitions_again"] = materialize_asset(instance, paths, "feature_definitions")
            results["online_9"] = materialize_asset(instance, paths, "online_features", partition="2013-01-09")
            results["online_10"] = materialize_asset(instance, paths, "online_features", partition=LAST_DAY)
            results["training"] = materialize_asset(instance, paths, "training_set")
            yield {"paths": paths, "instance": instance, **results}


def _store(paths: StatePaths):
    from mlplatform.features.repo import open_store

    return open_store(paths)


def test_definitions_apply_once_per_change(built) -> None:
    first, again = materialization_metadata(built["definitions"], "feature_definitions"), \
        materialization_metadata(built["definitions_again"], "feature_definitions")
    assert first["applied"] is True and again["applied"] is False
    assert first["feature_service"] == SERVICE_NAME
    assert set(first["feature_views"]) == {"origin_weather", "route_delay_stats", "carrier_delay_stats",
                                           "origin_delay_stats", "origin_congestion", "plane", "flight_calendar"}


def _as_of(flights: pd.DataFrame, table: pd.DataFrame, keys: list[str], ttl: timedelta | None,
           columns: list[str], prefix: str) -> pd.DataFrame:
    """The latest row at or before each flight's departure (within the TTL), computed with pandas."""
    rows = table.sort_values("event_timestamp")
    left = flights.sort_values("scheduled_departure_utc")
    joined = pd.merge_asof(left, rows[[*keys, "event_timestamp", *columns]], left_on="scheduled_departure_utc",
                           right_on="event_timestamp", by=keys, direction="backward", tolerance=ttl)
    return joined.set_index("flight_id")[columns].add_prefix(f"{prefix}__")


def test_training_set_matches_the_dbt_tables(built) -> None:
    paths: StatePaths = built["paths"]
    manifest = materialization_metadata(built["training"], "training_set")["manifest"]
    training = pd.read_parquet(manifest["path"]).set_index("flight_id")
    flights = warehouse_table(paths, "select * from fct_flights")
    assert len(training) == len(flights) == manifest["row_count"]
    utc = lambda frame: frame.assign(  # noqa: E731 - a tiny adapter
        **{c: pd.to_datetime(frame[c], utc=True) for c in ("event_timestamp", "scheduled_departure_utc") if c in frame})
    flights = utc(flights)

    expected = [
        _as_of(flights, utc(warehouse_table(paths, "select * from feat_origin_weather")), ["origin_code"],
               timedelta(hours=3), ["temperature_f", "wind_gust_mph", "visibility_mi"], "origin_weather"),
        _as_of(flights, utc(warehouse_table(paths, "select * from feat_route_delay_stats")), ["route"],
               timedelta(days=1), ["delay_rate_7d", "mean_dep_delay_28d", "flights_28d"], "route_delay_stats"),
        _as_of(flights, utc(warehouse_table(paths, "select * from feat_carrier_delay_stats")), ["carrier_code"],
               timedelta(days=1), ["delay_rate_28d"], "carrier_delay_stats"),
        _as_of(flights, utc(warehouse_table(paths, "select * from feat_origin_congestion")), ["origin_code"],
               timedelta(hours=1), ["scheduled_departures_hour", "scheduled_departures_day"], "origin_congestion"),
        _as_of(flights.dropna(subset=["tail_number"]), utc(warehouse_table(paths, "select * from feat_plane")),
               ["tail_number"], None, ["plane_seats", "plane_type"], "plane"),
    ]
    for frame in expected:
        got = training.loc[frame.index, frame.columns]
        pd.testing.assert_frame_equal(got.astype("float64", errors="ignore"),
                                      frame.astype("float64", errors="ignore"), check_dtype=False,
                                      check_names=False)
    # The on-demand calendar features equal dbt's feat_flight_calendar for every flight.
    calendar = warehouse_table(paths, "select * from feat_flight_calendar").set_index("flight_id")
    for column in ("departure_hour", "day_of_week", "month", "days_to_nearest_holiday"):
        assert (training[f"flight_calendar__{column}"] == calendar.loc[training.index, column]).all(), column


def test_training_set_manifest(built) -> None:
    paths: StatePaths = built["paths"]
    meta = materialization_metadata(built["training"], "training_set")
    manifest = meta["manifest"]
    assert manifest["window"] == {"first_day": "2013-01-01", "last_day": LAST_DAY}
    assert manifest["days"] == 10 and manifest["partitions"][0] == "2013-01-01"
    assert manifest["feature_service"] == SERVICE_NAME and manifest["feature_service_version"] == "v1"
    for field in ("feature_definitions_hash", "dbt_code_version", "content_hash", "dagster_run_id"):
        assert manifest[field]
    training = pd.read_parquet(manifest["path"])
    assert manifest["label_rate"] == pytest.approx(training["is_delayed"].mean(), abs=1e-6)
    import hashlib
    from pathlib import Path

    assert hashlib.sha256(Path(manifest["path"]).read_bytes()).hexdigest() == manifest["content_hash"]
    assert meta["dagster/row_count"] == manifest["row_count"]
    assert manifest["labeled_rows_in_window"] == manifest["row_count"] and manifest["sampled_to"] is None
    # The drift reference is fitted with the set and kept beside it, without the calendar features.
    from mlplatform.ml.drift import PROFILE_FILE, training_set_profile

    kept = json.loads(Path(manifest["path"]).with_name(PROFILE_FILE).read_text())["features"]
    assert "carrier_code" in kept and "origin_weather__temperature_f" in kept
    assert not any(name.startswith("flight_calendar__") for name in kept)
    assert sum(kept["carrier_code"]["counts"].values()) == manifest["row_count"]
    assert set(training_set_profile(Path(manifest["path"]))) == set(kept)

    from mlplatform.status import collect_status, format_status

    status = collect_status(paths)
    assert status["training_set"]["content_hash"] == manifest["content_hash"]
    assert "training set" in format_status(status)


def test_unknown_route_plane_and_weather_get_nulls(built) -> None:
    store = _store(built["paths"])
    flights = pd.DataFrame({
        "flight_id": ["known", "unknown"], "origin_code": ["JFK", "XXX"], "route": ["JFK-LAX", "XXX-ZZZ"],
        "carrier_code": ["AA", "ZZ"], "tail_number": ["N335AA", "NOPLANE"],
        "event_timestamp": pd.to_datetime(["2013-01-09T15:00:00Z"] * 2),
        "scheduled_departure_utc": pd.to_datetime(["2013-01-09T15:00:00Z"] * 2)})
    from mlplatform.features.training import retrieve

    flights["is_delayed"] = False
    frame = retrieve(store, flights, SERVICE_NAME).set_index("flight_id")
    unknown = frame.loc["unknown"]
    for column in ("origin_weather__temperature_f", "route_delay_stats__delay_rate_7d", "plane__plane_seats",
                   "carrier_delay_stats__delay_rate_28d", "origin_congestion__scheduled_departures_hour"):
        assert pd.isna(unknown[column]), column
        assert not pd.isna(frame.loc["known", column]) or column.startswith("origin_congestion"), column
    assert unknown["flight_calendar__departure_hour"] == 10  # request features need no entity


def test_an_empty_training_window_is_a_clear_error(built) -> None:
    result = materialize_asset(built["instance"], built["paths"], "training_set",
                               config={"first_day": "2013-06-01", "last_day": "2013-06-30"}, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert "the training window 2013-06-01 .. 2013-06-30 has no labeled rows" in message
    assert "2013-01-01 .. 2013-01-10" in message


def test_online_lookups_return_the_latest_values(built) -> None:
    paths: StatePaths = built["paths"]
    meta = materialization_metadata(built["online_10"], "online_features")
    assert meta["rows_written"] > 0 and meta["superseded_views"] == []
    assert meta["freshest_timestamp"].startswith("2013-01-11T04:59:59")
    store = _store(paths)
    weather = pq.read_table(paths.exports / "feat_origin_weather" / f"date={LAST_DAY}" / "data.parquet").to_pandas()
    latest = weather.sort_values("event_timestamp").groupby("origin_code").tail(1).set_index("origin_code")
    online = store.get_online_features(
        features=["origin_weather:temperature_f", "origin_weather:pressure_mb"],
        entity_rows=[{"origin_code": o} for o in ("EWR", "JFK", "LGA")]).to_df().set_index("origin_code")
    for origin in ("EWR", "JFK", "LGA"):
        assert online.loc[origin, "temperature_f"] == latest.loc[origin, "temperature_f"]
    stats = store.get_online_features(features=["carrier_delay_stats:flights_7d"],
                                      entity_rows=[{"carrier_code": "UA"}]).to_df()
    expected = warehouse_table(paths, "select flights_7d from feat_carrier_delay_stats "
                                      f"where carrier_code = 'UA' and as_of_date = date '{LAST_DAY}'")
    assert stats["flights_7d"][0] == expected["flights_7d"][0]


def test_an_older_day_never_overwrites_newer_online_values(built) -> None:
    again = materialize_asset(built["instance"], built["paths"], "online_features", partition="2013-01-09")
    meta = materialization_metadata(again, "online_features")
    assert "origin_weather" in meta["superseded_views"]
    test_online_lookups_return_the_latest_values(built)


def test_skew_check_passes_on_good_data_and_fails_on_a_planted_mismatch(built) -> None:
    [good] = built["online_10"].get_asset_check_evaluations()
    assert good.passed and good.metadata["values_compared"].value > 100

    paths: StatePaths = built["paths"]
    store = _store(paths)
    row = store.get_online_features(features=["origin_weather:temperature_f"],
                                    entity_rows=[{"origin_code": "JFK"}]).to_df()
    weather = pq.read_table(paths.exports / "feat_origin_weather" / f"date={LAST_DAY}" / "data.parquet").to_pandas()
    planted = weather[weather.origin_code.isin(["EWR", "JFK", "LGA"])].sort_values("event_timestamp") \
        .groupby("origin_code").tail(1).copy()
    planted["temperature_f"] = planted["temperature_f"] + 7.5
    store.write_to_online_store("origin_weather", planted)
    assert store.get_online_features(features=["origin_weather:temperature_f"],
                                     entity_rows=[{"origin_code": "JFK"}]).to_df()["temperature_f"][0] \
        == row["temperature_f"][0] + 7.5

    from mlplatform.definitions import defs

    check = defs.get_asset_checks_def(dg.AssetCheckKey(dg.AssetKey("online_features"), "online_matches_offline"))
    from mlplatform.resources import PlatformState

    # The check alone, as the UI's "Execute check" runs it (the asset is not rematerialized).
    check_only = dg.Definitions(
        assets=[defs.get_assets_def("online_features")], asset_checks=[check],
        jobs=[dg.define_asset_job("skew_check", selection=dg.AssetSelection.checks(check))],
        resources={"state": PlatformState(home=str(paths.home))})
    result = check_only.resolve_job_def("skew_check").execute_in_process(instance=built["instance"])
    [bad] = result.get_asset_check_evaluations()
    assert not bad.passed
    examples = plain(bad.metadata["examples"])
    assert any(e["feature"] == "origin_weather__temperature_f" for e in examples)


def test_ui_graph_reads_dbt_feature_tables_into_feast_assets() -> None:
    from mlplatform.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = lambda key: {p.to_user_string() for p in graph.get(dg.AssetKey(key)).parent_keys}  # noqa: E731
    assert {"feature_definitions", "feat_origin_weather", "feat_plane"} <= parents("online_features")
    assert {"feature_definitions", "fct_flights", "feat_route_delay_stats"} <= parents("training_set")
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    for key in ("feature_definitions", "online_features", "training_set"):
        assert specs[key].group_name == "features" and "feast" in specs[key].kinds


def test_definitions_follow_the_state_directory_they_are_applied_to(tmp_path, monkeypatch) -> None:
    from mlplatform.features.repo import apply_definitions, open_store
    from mlplatform.state import HOME_ENV

    monkeypatch.setenv(HOME_ENV, str(tmp_path))  # restored after the test
    for name in ("first", "second"):
        paths = StatePaths.resolve(tmp_path / name).ensure()
        apply_definitions(paths)
        source = open_store(paths).get_feature_view("origin_weather").batch_source.path
        assert source.startswith(str(paths.exports)), source


def test_training_flights_beyond_the_cap_are_a_seeded_sample_of_the_whole_window(built) -> None:
    from mlplatform.features.training import labeled_rows
    from mlplatform.ingest.lake import Lake

    lake = Lake(built["paths"].exports)
    everything, days = labeled_rows(lake, None, None)
    sample, sampled_days = labeled_rows(lake, None, None, max_rows=500, seed=13)
    assert len(sample) == 500 and sampled_days == days
    assert sample.attrs["labeled_rows"] == everything.attrs["labeled_rows"] == len(everything)
    assert sample["flight_id"].is_unique and set(sample["flight_id"]) <= set(everything["flight_id"])
    # Drawn from every day, kept in time order, and the same each time for the same seed.
    assert sample["scheduled_departure_utc"].dt.date.nunique() >= len(days) - 1
    assert sample["scheduled_departure_utc"].is_monotonic_increasing
    again, _ = labeled_rows(lake, None, None, max_rows=500, seed=13)
    assert again["flight_id"].tolist() == sample["flight_id"].tolist()
    assert labeled_rows(lake, None, None, max_rows=10**9)[0]["flight_id"].tolist() == everything["flight_id"].tolist()


def test_retrieval_in_chunks_equals_one_query(built) -> None:
    """The point-in-time join runs on chunks of flights to bound memory: the same rows, in the same
    (time) order, whatever the chunk size, even from flights given out of order."""
    from mlplatform.features.training import labeled_rows, retrieve
    from mlplatform.ingest.lake import Lake

    store = _store(built["paths"])
    flights, _ = labeled_rows(Lake(built["paths"].exports), "2013-01-08", "2013-01-09")
    shuffled = flights.sample(frac=1.0, random_state=3)
    whole = retrieve(store, flights, SERVICE_NAME, chunk_rows=10**9)
    chunked = retrieve(store, shuffled, SERVICE_NAME, chunk_rows=len(flights) // 3)
    pd.testing.assert_frame_equal(chunked, whole)
    assert whole["scheduled_departure_utc"].is_monotonic_increasing and len(whole) == len(flights)


def test_a_lost_online_store_is_noticed_by_its_check_and_rebuilt_by_the_next_materialization(built) -> None:
    """The store loses every row (as Redis restarted empty would); the registry still says the days
    are online. The check fails naming missing entities; the next materialization notices the loss
    and writes each view again from the offline store, and the lookups are the offline store's newest values again."""
    import sqlite3

    paths: StatePaths = built["paths"]
    instance = built["instance"]
    with sqlite3.connect(paths.feast / "online_store.db") as db:
        for (name,) in db.execute("select name from sqlite_master where type = 'table'").fetchall():
            db.execute(f'delete from "{name}"')

    from mlplatform.features.online import check_online
    from mlplatform.ingest.lake import Lake

    lost = check_online(_store(paths), SERVICE_NAME, Lake(paths.exports))
    assert not lost.passed and lost.missing and {m["view"] for m in lost.missing} >= {"origin_weather"}

    rerun = materialize_asset(instance, paths, "online_features", partition=LAST_DAY)
    meta = materialization_metadata(rerun, "online_features")
    assert "origin_weather" in meta["rebuilt_views"] and "missing online" in meta["rebuilt_views"]["origin_weather"]
    [check] = rerun.get_asset_check_evaluations()
    assert check.passed, plain(check.metadata["examples"])
    assert check.metadata["missing_entities"].value == 0
    test_online_lookups_return_the_latest_values(built)  # the offline store's newest values, online again


@pytest.mark.fast
def test_a_feature_view_naming_a_column_its_table_lacks_is_refused_before_it_is_applied(tmp_path) -> None:
    import pyarrow as pa
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    from mlplatform.features.repo import FeatureDefinitionError, check_sources

    folder = tmp_path / "feat_things" / "date=2020-01-01"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"thing_id": ["a"], "event_timestamp": pd.to_datetime(["2020-01-01"], utc=True),
                             "value_today": [1.0], "raw_total": [2.0]}), folder / "data.parquet")
    thing = Entity(name="thing", join_keys=["thing_id"], value_type=ValueType.STRING)

    def view(*features: str, mapping: dict | None = None) -> FeatureView:
        source = FileSource(name="feat_things", path=str(tmp_path / "feat_things" / "date=*" / "data.parquet"),
                            timestamp_field="event_timestamp", field_mapping=mapping)
        return FeatureView(name="things", entities=[thing], source=source,
                           schema=[Field(name=f, dtype=Float64) for f in features])

    check_sources([view("value_today"), view("total", mapping={"raw_total": "total"})])
    with pytest.raises(FeatureDefinitionError, match=r"'things' reads 'value_todya', which its source 'feat_things'"):
        check_sources([view("value_today", "value_todya")])
    # A table not exported yet is not judged.
    check_sources([FeatureView(name="later", entities=[thing], schema=[Field(name="x", dtype=Float64)],
                               source=FileSource(name="x", path=str(tmp_path / "none" / "*.parquet"),
                                                 timestamp_field="event_timestamp"))])


@pytest.mark.fast
def test_the_definitions_hash_follows_the_specs_the_feast_files_read() -> None:
    """A Feast file takes names from its use case's spec (its service's): a spec edit is an edit of
    the definitions, which the planner applies again."""
    from mlplatform.features import repo
    from mlplatform.usecases import DEFS_DIR

    specs = set(DEFS_DIR.glob("*/defs.yaml"))
    assert specs and specs <= set(repo._DEFINITION_CODE)
