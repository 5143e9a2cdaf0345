"""The raw stage in Dagster: landing files become Parquet partitions, bad files are quarantined."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pyarrow.parquet as pq
import pytest

from helpers import failure_message, materialize_raw
from landing_files import BAD_FILES, DAY, with_value
from mlplatform.ingest.landing import sha256
from mlplatform.ingest.replay import Replayer

pytestmark = pytest.mark.fast  # in the fast lane (`make test-fast`)


@pytest.fixture
def landed(zone):
    Replayer(zone).replay(through=date(2013, 1, 3))
    return zone


def _event_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    materializations = result.asset_materializations_for_node(asset)
    assert len(materializations) == 1
    return {k: v.value for k, v in materializations[0].metadata.items()}


def test_a_day_lands_in_the_lake_with_metadata_and_checks(instance, paths, landed, lake) -> None:
    result = materialize_raw(instance, paths, "flights", DAY)
    assert result.success

    stored = lake.read("flights", DAY)
    source = landed.file("flights", DAY)
    assert stored.num_rows == source.read_text().count("\n") - 1 == 943
    meta = _event_metadata(result, "raw_flights")
    assert meta["dagster/row_count"] == 943
    assert meta["rejected_rows"] == 0
    assert meta["source_sha256"] == sha256(source.read_bytes())
    assert meta["source_file"] == str(source)
    assert [c.name for c in meta["dagster/column_schema"].columns][:3] == ["year", "month", "day"]

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["conforms_to_contract"].passed
    assert checks["rejected_rows_within_limit"].passed
    assert instance.get_latest_materialization_event(dg.AssetKey("raw_flights")) is not None


def test_rematerializing_replaces_the_partition_exactly(instance, paths, landed, lake) -> None:
    assert materialize_raw(instance, paths, "flights", DAY).success
    first = lake.read("flights", DAY)
    assert materialize_raw(instance, paths, "flights", DAY).success
    assert lake.read("flights", DAY).equals(first)
    assert lake.days("flights") == [DAY]
    files = [p for p in lake.table_dir("flights").rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["data.parquet", "source.json"]  # no temporary files left behind


def test_reference_tables_and_weather_load(instance, paths, landed, lake) -> None:
    for table in ("airports", "airlines", "planes"):
        assert materialize_raw(instance, paths, table).success
    assert pq.read_metadata(lake.path("planes")).num_rows == 3322
    assert materialize_raw(instance, paths, "weather", DAY).success
    assert lake.read("weather", DAY).num_rows == 72


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_quarantined_and_the_lake_is_unchanged(case, instance, paths, landed, lake) -> None:
    assert materialize_raw(instance, paths, "flights", DAY).success
    lake_before = lake.path("flights", DAY).read_bytes()

    make, kind = BAD_FILES[case]
    source = landed.file("flights", DAY)
    bad = make(source.read_bytes())
    source.write_bytes(bad)
    result = materialize_raw(instance, paths, "flights", DAY)

    assert not result.success
    message = failure_message(result)
    assert str(source) in message and f"({kind})" in message
    assert lake.path("flights", DAY).read_bytes() == lake_before
    assert not source.exists()
    quarantined = paths.quarantine / "flights" / f"{DAY}.csv"
    assert quarantined.read_bytes() == bad
    reason = json.loads((paths.quarantine / "flights" / f"{DAY}.csv.reason.json").read_text())
    assert reason["kind"] == kind and reason["problem"] in message
    assert reason["sha256"] == sha256(bad) and reason["day"] == DAY


def test_a_bad_first_delivery_leaves_no_partition(instance, paths, landed, lake) -> None:
    source = landed.file("flights", DAY)
    source.write_bytes(BAD_FILES["wrongly typed"][0](source.read_bytes()))
    assert not materialize_raw(instance, paths, "flights", DAY).success
    assert lake.days("flights") == []


def test_rejected_rows_go_to_the_rejects_table(instance, paths, landed, lake) -> None:
    source = landed.file("flights", DAY)
    landed.deliver("flights", DAY, with_value(source.read_bytes(), "distance", "-5", 3))
    result = materialize_raw(instance, paths, "flights", DAY)

    assert result.success
    assert lake.read("flights", DAY).num_rows == 942
    rejects = pq.read_table(lake.rejects_path("flights", DAY)).to_pandas()
    assert rejects["_reason"].tolist() == ["distance below 1"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["rejected_rows_within_limit"].passed
    assert checks["rejected_rows_within_limit"].severity == dg.AssetCheckSeverity.WARN

    # A corrected re-delivery replaces the rejects too.
    landed.deliver("flights", DAY, landed.file("flights", "2013-01-03").read_bytes().replace(b"2013,1,3,", b"2013,1,2,"))
    landed_again = materialize_raw(instance, paths, "flights", DAY)
    assert landed_again.success
    assert not lake.rejects_path("flights", DAY).exists()


def test_the_reject_limit_fails_the_partition(instance, paths, landed, lake) -> None:
    source = landed.file("flights", DAY)
    landed.deliver("flights", DAY, with_value(source.read_bytes(), "distance", "-5", slice(1, 30)))  # 3%
    result = materialize_raw(instance, paths, "flights", DAY, max_reject_share=0.02)
    assert not result.success
    assert "above the 2.0% limit" in failure_message(result)
    assert lake.days("flights") == []


def test_a_missing_file_names_where_it_was_expected_and_why_it_is_gone(instance, paths, landed) -> None:
    result = materialize_raw(instance, paths, "flights", "2013-01-20")
    assert not result.success
    assert "no landing file for flights for 2013-01-20: expected" in failure_message(result)

    source = landed.file("flights", DAY)
    source.write_bytes(b"")
    materialize_raw(instance, paths, "flights", DAY)
    again = materialize_raw(instance, paths, "flights", DAY)
    assert "was quarantined at" in failure_message(again)
    assert "the file is empty" in failure_message(again)


def test_quarantine_keeps_every_bad_delivery(instance, paths, landed) -> None:
    source = landed.file("flights", DAY)
    good_bytes = source.read_bytes()
    for bad in (b"", b"nonsense\n"):
        source.write_bytes(bad)
        assert not materialize_raw(instance, paths, "flights", DAY).success
    kept = sorted(p.name for p in (paths.quarantine / "flights").iterdir())
    assert len(kept) == 5  # two files, two reasons, and the manifest that came with the first
    source.write_bytes(good_bytes)
    assert materialize_raw(instance, paths, "flights", DAY).success
