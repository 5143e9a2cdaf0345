"""Helpers for tests: run the real Dagster definitions against a test instance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from mlplatform.resources import PlatformState, RawIngestPolicy
from mlplatform.state import StatePaths


def materialize_raw(instance: dg.DagsterInstance, paths: StatePaths, table: str, day: str | None = None,
                    max_reject_share: float = 0.05) -> dg.ExecuteInProcessResult:
    """Materialize `raw_<table>` (for `day`) with the code location's own asset definition."""
    from mlplatform.definitions import defs

    asset = defs.get_assets_def(f"raw_{table}")
    return dg.materialize(
        [asset], partition_key=day, instance=instance, raise_on_error=False,
        resources={"state": PlatformState(home=str(paths.home)),
                   "raw_ingest": RawIngestPolicy(max_reject_share=max_reject_share)},
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures, "expected a failed step"
    return str(failures[0].step_failure_data.error.message) + str(
        failures[0].step_failure_data.user_failure_data.description
        if failures[0].step_failure_data.user_failure_data else "")


def land_and_load(paths: StatePaths, through: str) -> None:
    """Replay the real data through `through` and load it into the lake (the raw stage's own code,
    without Dagster, to keep the transform tests fast: the raw assets are tested on their own)."""
    from datetime import date

    from mlplatform.defs.flights.contracts import CONTRACTS
    from mlplatform.ingest.lake import Lake
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.load import load_landing_file
    from mlplatform.ingest.replay import Replayer

    zone, lake = LandingZone(paths.landing, paths.quarantine), Lake(paths.lake)
    Replayer(zone).replay(through=date.fromisoformat(through))
    for contract in CONTRACTS.values():
        for day in (zone.days(contract.table) if contract.is_daily else [None]):
            if day is None or not lake.path(contract.table, day).exists():
                load_landing_file(contract, zone, lake, day=day)


def materialize_dbt(instance: dg.DagsterInstance, paths: StatePaths, *, day: str | None = None,
                    first: str | None = None, last: str | None = None, full_refresh: bool = False,
                    reference: bool = False) -> dg.ExecuteInProcessResult:
    """Run the dbt assets: the reference models, or the daily models for a day or a day range."""
    from mlplatform.assets.transformed import dbt_daily_models, dbt_reference_models
    from mlplatform.warehouse.project import dbt_cli_resource

    resources = {"state": PlatformState(home=str(paths.home)), "dbt": dbt_cli_resource()}
    if reference:
        return dg.materialize([dbt_reference_models], instance=instance, resources=resources)
    tags = {}
    if first:
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    config = {"ops": {dbt_daily_models.op.name: {"config": {"full_refresh": full_refresh}}}}
    return dg.materialize([dbt_daily_models], instance=instance, resources=resources, partition_key=day,
                          tags=tags, run_config=config)


def build_through(instance: dg.DagsterInstance, paths: StatePaths, last_day: str) -> None:
    """The real data landed and loaded through `last_day`, and every dbt model built for it."""
    land_and_load(paths, last_day)
    assert materialize_dbt(instance, paths, reference=True).success
    assert materialize_dbt(instance, paths, first="2013-01-01", last=last_day).success


def warehouse_table(paths: StatePaths, sql: str):
    """Query the warehouse of the active profile into pandas, timestamps in UTC."""
    from mlplatform.warehouse.backends import open_warehouse

    return open_warehouse(paths).query(sql)


def materialize_asset(instance: dg.DagsterInstance, paths: StatePaths, key: str, *,
                      partition: str | None = None, config: dict | None = None,
                      raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize one of the code location's assets, with its checks, against `paths`."""
    from mlplatform.definitions import defs

    asset = defs.get_assets_def(key)
    checks = [c for c in (defs.asset_checks or []) if dg.AssetKey(key) in {k.asset_key for k in c.check_keys}]
    run_config = {"ops": {key: {"config": config}}} if config else {}
    return dg.materialize([asset, *checks], instance=instance, partition_key=partition, run_config=run_config,
                          raise_on_error=raise_on_error,
                          resources={**(defs.resources or {}), "state": PlatformState(home=str(paths.home))})


@contextmanager
def home_env(home: Path) -> Iterator[None]:
    """MLPLATFORM_HOME pointed at `home` meanwhile, as it was after."""
    import os

    from mlplatform.state import HOME_ENV

    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = previous


@contextmanager
def module_home(tmp_path_factory, name: str) -> Iterator[StatePaths]:
    """A state directory for a module's shared fixture, with MLPLATFORM_HOME pointed at it meanwhile."""
    paths = StatePaths.resolve(tmp_path_factory.mktemp(name) / "home").ensure()
    with home_env(paths.home):
        yield paths


def materialize_model(instance: dg.DagsterInstance, paths: StatePaths, keys: list[str], spec: dict,
                      raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Materialize model-stage assets on the CPU with the given `ModelSpec` settings."""
    from mlplatform.definitions import defs
    from mlplatform.model.mlflow_resource import platform_mlflow
    from mlplatform.resources import ModelSpec, TrainingDevice

    return dg.materialize([defs.get_assets_def(k) for k in keys], instance=instance,
                          raise_on_error=raise_on_error, resources={
                              "state": PlatformState(home=str(paths.home)), "mlflow": platform_mlflow,
                              "model_spec": ModelSpec(**spec), "training_device": TrainingDevice(device="cpu")})


def materialization_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    """The metadata values of the run's one materialization of `key`."""
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: plain(v) for k, v in event.materialization.metadata.items()}


def plain(value: dg.MetadataValue):
    """A metadata value as Python data: a table as its rows (dicts), anything else as its value."""
    if isinstance(value, dg.TableMetadataValue):
        return [dict(record.data) for record in value.records]
    return value.value


def rows_by(rows: list[dict], key: str) -> dict[str, dict]:
    """A table's rows keyed by one column."""
    return {row[key]: row for row in rows}
