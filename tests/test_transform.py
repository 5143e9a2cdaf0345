"""The transform stage: dbt on DuckDB as Dagster assets, built day by day, leak-free."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers import module_home, land_and_load, materialize_dbt, warehouse_table
from mlplatform.state import HOME_ENV, StatePaths

# Feature tables and the date column each is built by.
DAILY_TABLES = {
    "fct_flights": "flight_date",
    "int_flight_outcomes_daily": "flight_date",
    "feat_origin_weather": "weather_date",
    "feat_route_delay_stats": "as_of_date",
    "feat_carrier_delay_stats": "as_of_date",
    "feat_origin_delay_stats": "as_of_date",
    "feat_origin_congestion": "flight_date",
    "feat_flight_calendar": "flight_date",
    "feat_origin_departures": "departure_date",
    "feat_plane_departures": "departure_date",
}
KEYS = {
    "fct_flights": ["flight_id"],
    "int_flight_outcomes_daily": ["flight_date", "grain", "grain_key"],
    "feat_origin_weather": ["origin_code", "event_timestamp"],
    "feat_route_delay_stats": ["route", "as_of_date"],
    "feat_carrier_delay_stats": ["carrier_code", "as_of_date"],
    "feat_origin_delay_stats": ["origin_code", "as_of_date"],
    "feat_origin_congestion": ["origin_code", "event_timestamp"],
    "feat_flight_calendar": ["flight_id"],
    "feat_origin_departures": ["origin_code", "event_timestamp"],
    "feat_plane_departures": ["tail_number", "event_timestamp"],
}


def _rows(paths: StatePaths, table: str, where: str) -> pd.DataFrame:
    frame = warehouse_table(paths, f"select * from {table} where {where}")
    return frame.sort_values(KEYS[table]).reset_index(drop=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatePaths]:
    """A state directory with 2013-01-01 .. 2013-01-12 in the lake: days 1-11 built in one ranged
    run, day 12 built alone, incrementally (a snapshot of day 12 is kept), then a full refresh."""
    with module_home(tmp_path_factory, "transform") as paths:
        land_and_load(paths, "2013-01-12")
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            assert materialize_dbt(instance, paths, reference=True).success
            assert materialize_dbt(instance, paths, first="2013-01-01", last="2013-01-11").success
            single = materialize_dbt(instance, paths, day="2013-01-12")
            assert single.success
            snapshot = {t: _rows(paths, t, f"{c} = date '2013-01-12'") for t, c in DAILY_TABLES.items()}
            _STATE.update(instance_events=single, incremental_day12=snapshot,
                          day12_parse=_last_invocation_messages(paths.dbt_target / "daily" / "dbt.log"),
                          day12_sql=(paths.dbt_target / "daily" / "compiled" / "mlplatform" / "models" / "flights"
                                     / "features" / "feat_plane_departures.sql").read_text())
            assert materialize_dbt(instance, paths, full_refresh=True, first="2013-01-01",
                                   last="2013-01-12").success
        yield paths


_STATE: dict = {}


def _last_invocation_messages(log: Path) -> list[str]:
    """What dbt logged (its JSON log) in its last invocation."""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    last = events[-1]["info"]["invocation_id"]
    return [e["info"]["msg"] for e in events if e["info"]["invocation_id"] == last]


def test_a_new_days_build_reuses_dbts_last_parse(home: StatePaths) -> None:
    """The day a build writes reaches dbt in its environment, read only when dbt executes: a build of
    another day than the last parses nothing again (as vars, each new day made dbt parse the whole
    project), and its SQL still reads that day."""
    messages = _STATE["day12_parse"]
    assert any("Partial parsing enabled, no changes found" in m for m in messages), messages[:5]
    assert not any("Unable to do partial parsing" in m for m in messages)
    assert "cast('2013-01-12' as date)" in _STATE["day12_sql"]


def test_one_partition_run_builds_that_day_and_exports_it(home: StatePaths) -> None:
    result: dg.ExecuteInProcessResult = _STATE["instance_events"]
    materialized = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    for table in ("fct_flights", "feat_route_delay_stats", "feat_origin_weather", "stg_flights"):
        assert materialized[table].partition == "2013-01-12"
    landed = (home.landing / "flights" / "2013-01-12.csv").read_text().count("\n") - 1
    fct = materialized["fct_flights"].materialization.metadata
    assert fct["dagster/row_count"].value == landed == 690  # the flights scheduled that Saturday
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    assert {"unique_fct_flights_flight_id", "not_null_fct_flights_is_delayed"} <= {c.check_name for c in checks}

    export = pq.read_table(home.exports / "fct_flights" / "date=2013-01-12" / "data.parquet")
    assert export.num_rows == landed
    assert str(export.schema.field("scheduled_departure_utc").type) == "timestamp[us, tz=UTC]"


def test_incremental_day_equals_full_refresh(home: StatePaths) -> None:
    for table, column in DAILY_TABLES.items():
        incremental = _STATE["incremental_day12"][table]
        full = _rows(home, table, f"{column} = date '2013-01-12'")
        assert len(full) > 0, table
        pd.testing.assert_frame_equal(incremental, full, check_dtype=True, obj=table)


def test_delay_stats_end_the_day_before(home: StatePaths) -> None:
    flights = warehouse_table(home, "select * from fct_flights")
    stats = _rows(home, "feat_carrier_delay_stats", "as_of_date = date '2013-01-10'").set_index("carrier_code")
    window = flights[(flights.flight_date >= pd.Timestamp("2013-01-03")) &
                     (flights.flight_date <= pd.Timestamp("2013-01-09"))]
    expected = window.groupby("carrier_code").agg(flights=("flight_id", "size"),
                                                  delayed=("is_delayed", "sum"),
                                                  delay=("dep_delay_minutes", "mean"))
    for carrier, row in expected.iterrows():
        assert stats.loc[carrier, "flights_7d"] == row.flights
        assert stats.loc[carrier, "delay_rate_7d"] == pytest.approx(row.delayed / row.flights)
        assert stats.loc[carrier, "mean_dep_delay_7d"] == pytest.approx(row.delay)
    # The first day has no history: no statistics at all.
    assert _rows(home, "feat_carrier_delay_stats", "as_of_date = date '2013-01-01'").empty
    assert stats["event_timestamp"].astype(str).unique().tolist() == ["2013-01-10 05:00:00+00:00"]


def test_feature_tables_keep_unknown_planes_and_destinations(home: StatePaths) -> None:
    flights = warehouse_table(home, "select * from fct_flights")
    planes = warehouse_table(home, "select tail_number from feat_plane")
    unknown = flights[~flights.is_plane_known]
    assert len(unknown) > 0 and not unknown.tail_number.dropna().isin(planes.tail_number).any()
    assert (~flights.is_dest_known).sum() > 0
    assert flights.is_delayed.eq(flights.is_cancelled | (flights.dep_delay_minutes > 15)).all()


def test_calendar_features(home: StatePaths) -> None:
    calendar = warehouse_table(home, "select * from feat_flight_calendar")
    first = calendar[calendar.flight_id == "UA1545-EWR-20130101-0515"].iloc[0]
    assert (first.departure_hour, first.day_of_week, first.month, first.days_to_nearest_holiday) == (5, 2, 1, 0)
    jan12 = calendar[calendar.flight_date == pd.Timestamp("2013-01-12")]
    assert set(jan12.days_to_nearest_holiday) == {9}  # MLK day is 2013-01-21, New Year 11 days back


def test_ui_graph_reads_raw_to_staging_to_marts_to_features() -> None:
    from mlplatform.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.get_all_asset_keys()}
    assert parents["stg_flights"] == {"raw_flights"}
    assert parents["stg_planes"] == {"raw_planes"}
    assert {"stg_flights", "dim_airports", "dim_planes"} <= parents["fct_flights"]
    assert parents["feat_route_delay_stats"] == {"int_flight_outcomes_daily"}
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert specs["fct_flights"].group_name == specs["stg_flights"].group_name == "transformed"
    assert specs["feat_origin_weather"].group_name == specs["feat_plane"].group_name == "features"
    assert {"dbt", "duckdb"} <= set(specs["fct_flights"].kinds)
    assert specs["fct_flights"].partitions_def is not None and specs["dim_planes"].partitions_def is None


def _perturb_outcomes(path: Path) -> None:
    """Make every departure of the file 120 minutes later and cancel the first ten flights."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    for i, row in enumerate(rows):
        if row["dep_delay"] != "NA":
            row["dep_delay"] = str(float(row["dep_delay"]) + 120)
        if i < 10:
            row["dep_time"] = row["dep_delay"] = row["arr_time"] = row["arr_delay"] = row["air_time"] = "NA"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    from mlplatform.ingest.landing import LandingZone

    # Delivered again as the feed would: the data, then its manifest.
    LandingZone(path.parents[1], path.parents[2] / "quarantine").deliver(path.parent.name, path.stem,
                                                                         out.getvalue().encode())


def test_point_in_time_features_ignore_later_days(home: StatePaths, tmp_path, monkeypatch, instance) -> None:
    """Features of flights before day D are the same whether or not later days were landed and
    built, even when those later days change (here: 2013-01-09 on, with different outcomes)."""
    later = StatePaths.resolve(tmp_path / "with-later-days").ensure()
    monkeypatch.setenv(HOME_ENV, str(later.home))
    from mlplatform.ingest.replay import Replayer
    from mlplatform.ingest.landing import LandingZone
    from datetime import date

    Replayer(LandingZone(later.landing, later.quarantine)).replay(through=date(2013, 1, 16))
    for day in range(9, 17):
        _perturb_outcomes(later.landing / "flights" / f"2013-01-{day:02d}.csv")
    land_and_load(later, "2013-01-16")
    assert materialize_dbt(instance, later, reference=True).success
    assert materialize_dbt(instance, later, full_refresh=True, first="2013-01-01", last="2013-01-16").success

    for table, column in DAILY_TABLES.items():
        # Rows of days before D = 2013-01-09; the as-of-D delay statistics end the day before too.
        cutoff = "2013-01-09" if column == "as_of_date" else "2013-01-08"
        before = f"{column} <= date '{cutoff}'"
        pd.testing.assert_frame_equal(_rows(home, table, before), _rows(later, table, before), obj=table)
    changed = _rows(later, "feat_carrier_delay_stats", "as_of_date = date '2013-01-10'")
    assert not changed.equals(_rows(home, "feat_carrier_delay_stats", "as_of_date = date '2013-01-10'"))


def test_status_reports_what_the_warehouse_built(home: StatePaths) -> None:
    from mlplatform.status import collect_status, format_status

    status = collect_status(home)
    assert status["warehouse"]["fct_flights"]["count"] == 12
    assert status["warehouse"]["fct_flights"]["last"] == "2013-01-12"
    assert status["warehouse"]["feat_plane"]["rows"] == 3322
    assert "feat_route_delay_stats" in format_status(status)


def test_dbt_resource_skips_the_version_subprocess_and_the_adapter() -> None:
    """The platform's dbt resource answers dbt's version from the installed package and opens no
    adapter; it overrides two private methods of dagster-dbt, which must still be there."""
    from importlib.metadata import version

    from dagster_dbt import DbtCliResource

    from mlplatform.warehouse.project import PlatformDbtCli, dbt_cli_resource

    assert hasattr(DbtCliResource, "_cli_version") and hasattr(DbtCliResource, "_initialize_dbt_core_adapter")
    dbt = dbt_cli_resource()
    assert isinstance(dbt, PlatformDbtCli)
    assert str(dbt._cli_version) == version("dbt-core")
    assert dbt._initialize_dbt_core_adapter(["build"]) is None


def test_a_parse_never_shows_a_reader_half_a_manifest(monkeypatch) -> None:
    """Every process of the checkout reads the one manifest (a `dagster dev` parses it again as
    it loads the code, while a headless pipeline elsewhere loads it): a reader sees the old one or
    the new one, whole. Under `dagster dev` a current manifest is not parsed again."""
    import json
    import threading

    from mlplatform.warehouse.project import prepare_if_dev, prepare_manifest, require_manifest

    manifest = require_manifest()
    replaced = manifest.stat().st_ino
    parsed, reads, errors = threading.Event(), [], []

    def read() -> None:
        while not parsed.is_set():
            try:
                reads.append(len(json.loads(manifest.read_bytes())["nodes"]))
            except ValueError as err:
                errors.append(err)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        prepare_manifest(force=True)
    finally:
        parsed.set()
        reader.join()
    assert reads and not errors, errors[:1]
    # dbt writes its manifest in place, where a reader can catch it half written (seldom, but CI
    # did): the new one must arrive by a rename.
    assert manifest.stat().st_ino != replaced
    assert not list(manifest.parent.glob(".parse-*"))  # the parse's own directory is gone

    written = manifest.stat().st_mtime_ns
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    prepare_if_dev()
    assert manifest.stat().st_mtime_ns == written


def test_exports_in_chunks_of_days_write_what_one_query_would(home: StatePaths, tmp_path, monkeypatch) -> None:
    """A long range is exported a few days per query (bounded memory); every day's file holds
    exactly that day's rows, for a given range and for every day at once."""
    from mlplatform.ingest.lake import Lake
    from mlplatform.warehouse import exports as exporting
    from mlplatform.warehouse.backends import DuckDBWarehouse
    from mlplatform.warehouse.project import require_manifest

    monkeypatch.setattr(exporting, "CHUNK_DAYS", 5)
    specs = [s for s in exporting.export_specs(require_manifest()) if s.model in ("fct_flights", "feat_origin_weather")]
    days = [f"2013-01-{d:02d}" for d in range(2, 13)]
    for chosen, lake in ((days, Lake(tmp_path / "range")), (None, Lake(tmp_path / "all"))):
        written = exporting.export_tables(DuckDBWarehouse(home.warehouse_db, home.warehouse), lake, specs, chosen)
        for spec in specs:
            column = DAILY_TABLES[spec.model]
            expected_days = chosen or sorted(warehouse_table(
                home, f"select distinct cast({column} as varchar) as d from {spec.model}")["d"])
            assert lake.days(spec.model) == expected_days
            total = 0
            for day in expected_days:
                stored = pq.read_table(lake.path(spec.model, day)).to_pandas()
                assert len(stored) == len(warehouse_table(
                    home, f"select 1 from {spec.model} where {column} = date '{day}'")) > 0
                assert (stored[column].astype(str) == day).all()
                total += len(stored)
            assert written[spec.model] == total


@pytest.mark.parametrize("setting, shown", [(None, "1.8 GiB"), ("1GiB", "1.0 GiB")])
def test_dbt_bounds_duckdb_memory(home: StatePaths, tmp_path, setting, shown) -> None:
    """dbt's DuckDB takes 2 GB by default (not 80% of the machine), MLPLATFORM_DUCKDB_MEMORY_LIMIT
    sets another limit."""
    import json
    import os
    import subprocess
    import sys

    from mlplatform.warehouse.project import DBT_PROJECT_DIR

    env = {**os.environ, HOME_ENV: str(home.home)}
    env.pop("MLPLATFORM_DUCKDB_MEMORY_LIMIT", None)
    if setting:
        env["MLPLATFORM_DUCKDB_MEMORY_LIMIT"] = setting
    answer = subprocess.run([str(Path(sys.executable).with_name("dbt")), "show", "--inline",
                             "select current_setting('memory_limit') as m", "--output", "json", "--quiet",
                             "--target-path", str(tmp_path / "target"), "--profiles-dir", str(DBT_PROJECT_DIR)],
                            cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert json.loads(answer.stdout)["show"][0]["m"] == shown


def test_later_libraries_are_preloaded_on_the_callers_thread_and_a_broken_one_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A second importing thread could hand the run's thread a half-initialized module (it did, in
    # the end-to-end test): the preload must import on the thread that calls it.
    import sys
    import threading

    from mlplatform.preload import preload

    (tmp_path / "preload_broken.py").write_text("raise RuntimeError('broken on import')\n")
    (tmp_path / "preload_ok.py").write_text("import threading\nTHREAD = threading.current_thread().name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("preload_broken", "preload_ok"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    threads = threading.active_count()

    preload(["preload_broken", "preload_ok"])

    assert "preload_broken" not in sys.modules
    assert sys.modules["preload_ok"].THREAD == threading.current_thread().name
    assert threading.active_count() == threads


def _as_of(paths: StatePaths, table: str, key: str, moment: str) -> pd.DataFrame:
    """Each entity's row in force at `moment`: its latest with event_timestamp at or before it."""
    return warehouse_table(paths, f"""
        select * exclude (rn) from (
            select *, row_number() over (partition by {key} order by event_timestamp desc) as rn
            from {table} where event_timestamp <= timestamptz '{moment}')
        where rn = 1 order by {key}""").reset_index(drop=True)


def test_same_day_features_as_of_a_moment_ignore_later_departures(home: StatePaths, tmp_path, monkeypatch,
                                                                  instance) -> None:
    """Changing the outcomes of every flight that departs after T (here 2013-01-05 12:00 local: later
    still, or cancelled) leaves every same-day feature as of T unchanged, and changes those after T."""
    moment = "2013-01-05 17:00:00+00"
    later = StatePaths.resolve(tmp_path / "perturbed").ensure()
    monkeypatch.setenv(HOME_ENV, str(later.home))
    from datetime import date, datetime, timedelta, timezone

    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer

    Replayer(LandingZone(later.landing, later.quarantine)).replay(through=date(2013, 1, 6))
    cutoff = datetime(2013, 1, 5, 17, tzinfo=timezone.utc)
    for day in (5, 6):
        path = later.landing / "flights" / f"2013-01-{day:02d}.csv"
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        for n, row in enumerate(rows):
            if row["dep_delay"] == "NA":
                continue
            departed = (datetime.strptime(row["time_hour"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                        + timedelta(minutes=int(row["minute"]) + float(row["dep_delay"])))
            if departed > cutoff and n % 5 == 0:  # cancelled after all (the backlog counts it)
                row.update({c: "NA" for c in ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")})
            elif departed > cutoff:  # later still, so it stays after T
                row["dep_delay"] = str(float(row["dep_delay"]) + 90)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        LandingZone(later.landing, later.quarantine).deliver("flights", path.stem, out.getvalue().encode())
    land_and_load(later, "2013-01-06")
    assert materialize_dbt(instance, later, reference=True).success
    assert materialize_dbt(instance, later, first="2013-01-01", last="2013-01-06").success
    for table, key in (("feat_origin_departures", "origin_code"), ("feat_plane_departures", "tail_number")):
        pd.testing.assert_frame_equal(_as_of(home, table, key, moment), _as_of(later, table, key, moment), obj=table)
        assert not _as_of(home, table, key, "2013-01-05 23:00:00+00").equals(
            _as_of(later, table, key, "2013-01-05 23:00:00+00"))
