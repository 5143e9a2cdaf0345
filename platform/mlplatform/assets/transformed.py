"""Transform stage: the dbt project on DuckDB, as Dagster assets.

Two sets of dbt assets share the warehouse: the daily models (tag `daily`: staging views of the
daily raw tables, incremental marts, intermediates and feature tables), partitioned like the raw
stage, and the reference models (dimensions, features of the reference tables, seeds), built whole.
A run for day D gives dbt D in its environment (not as vars, which would make dbt parse the
project again for every day), so incremental models build only that day (reading the lookback
their windows need). Both sets take the `warehouse` pool and the warehouse's writer
(on DuckDB a lock, since it allows one writer; on PostgreSQL the lake is loaded into `raw` first),
and after each build export the tables other stages read as Parquet.
"""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from mlplatform.assets.raw import raw_asset_key
from mlplatform.usecases import active, named
from mlplatform.partitions import daily_partitions
from mlplatform.faults import crash_point
from mlplatform.preload import LATER_STEP_LIBRARIES, preload
from mlplatform.resources import PlatformState
from mlplatform.warehouse.project import DBT_PROJECT_DIR, dbt_project, require_manifest, use_case_vars

WAREHOUSE_POOL = "warehouse"
# The use case's own models and seeds (its folders of the shared dbt project; seeds only where it
# has some, as dbt warns of a selection that matches nothing); its daily ones are tagged `daily`.
USE_CASE_NODES = " ".join(f"path:{kind}/{active().dbt_folder}" for kind in ("models", "seeds")
                          if (DBT_PROJECT_DIR / kind / active().dbt_folder).is_dir())
DAILY = f"path:models/{active().dbt_folder},tag:daily"
# The libraries of the steps after the daily models, and the assets that need them: imported while
# dbt runs when the run goes on to those assets.
LATER_STEP_ASSETS = {dg.AssetKey(named(name)) for name in ("online_features", "feature_drift", "batch_predictions")}


class PlatformDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the raw assets; feature tables form the `features` group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # A use case's sources of its raw lake (`raw`, or `raw_<use case>`) are its raw assets.
        if dbt_resource_props["resource_type"] == "source" and dbt_resource_props["source_name"].startswith("raw"):
            return raw_asset_key(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "features" if "features" in dbt_resource_props.get("fqn", []) else "transformed"

    def get_partition_mapping(self, dbt_resource_props: Mapping[str, Any],
                              dbt_parent_resource_props: Mapping[str, Any]) -> dg.PartitionMapping | None:
        """A model whose trailing windows read the days before its own (`meta.lookback_days`) depends
        on those days of its daily parents: Dagster then knows that a corrected day feeds the days
        after it, which the downstream planner rebuilds (`later_days_affected`)."""
        lookback = ((dbt_resource_props.get("config") or {}).get("meta") or {}).get("lookback_days")
        if lookback and "daily" in (dbt_parent_resource_props.get("tags") or []):
            return dg.TimeWindowPartitionMapping(start_offset=-int(lookback),
                                                 allow_nonexistent_upstream_partitions=True)
        return None

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # The model's description from its YAML, as the UI's description; dagster-dbt would append
        # the raw SQL, which then fills the preview (the SQL is in dbt_project/models/).
        described = (dbt_resource_props.get("description") or "").strip()
        return described or super().get_description(dbt_resource_props)


translator = PlatformDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_code_references=False))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental models from scratch, every day at once."""


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, state: PlatformState,
           args: list[str], days: list[str] | None, target: str,
           window: tuple[str, str] | None = None) -> Iterator[Any]:
    """Run dbt under the warehouse lock, stream its events, then export what it built. `window`:
    the first and last day a partitioned build writes, set in dbt's environment
    (`MLPLATFORM_DBT_MIN_DAY`, `MLPLATFORM_DBT_MAX_DAY`; macros/partition_window.sql reads them).

    Materializations are held back until the exports are written, so each carries the row count
    it exported (counting in DuckDB while dbt still holds the file is not possible); test results
    and logs stream as they come.
    """
    # Imported here: pyarrow costs the code location's load otherwise, in every process.
    from mlplatform.warehouse.backends import open_warehouse
    from mlplatform.warehouse.exports import export_specs, export_tables

    paths = state.paths.activate()  # dbt finds the warehouse and the lake through MLPLATFORM_HOME
    held: list[dg.Output] = []
    later = LATER_STEP_ASSETS & context.job_def.asset_layer.selected_asset_keys
    warehouse = open_warehouse(paths)
    with warehouse.writer(on_wait=context.log.info):
        loaded = warehouse.load_lake(state.lake, {t: c.is_daily for t, c in active().module.CONTRACTS.items()})
        if any(loaded.values()):
            context.log.info(f"loaded lake partitions into the warehouse's raw schema: {loaded}")
        with _window_in_environment(window):  # dbt's process starts with the environment of this call
            invocation = dbt.cli(args, context=context, target_path=paths.dbt_target / target)
        preload(LATER_STEP_LIBRARIES if later else ())  # while dbt starts up and parses; its output waits in the pipe
        crash_point("dbt_build")  # dbt runs in a child process of the run: a test kills both here
        for event in invocation.stream():
            if isinstance(event, dg.Output):
                held.append(event)
            else:
                yield event
        built = [r["unique_id"].split(".")[-1] for r in invocation.get_artifact("run_results.json")["results"]
                 if r["unique_id"].startswith("model.") and r["status"] == "success"]
        specs = export_specs(require_manifest(), built)
        written = export_tables(warehouse, state.exports, specs, days)
    for output in held:
        rows = written.get(output.output_name)
        yield output if rows is None else output.with_metadata(
            {**output.metadata, "dagster/row_count": rows,
             "export": dg.MetadataValue.path(str(state.exports.table_dir(output.output_name)))})


@dbt_assets(
    manifest=require_manifest(),
    project=dbt_project,
    select=DAILY,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name=named("dbt_daily_models"),
)
def dbt_daily_models(context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource,
                     state: PlatformState) -> Iterator[Any]:
    days = list(context.partition_keys)  # one day, or each day of a range
    args = ["build", "--vars", json.dumps(use_case_vars(active()))]
    if config.full_refresh:
        yield from _build(context, dbt, state, [*args, "--full-refresh"], None, target="daily")
    else:
        yield from _build(context, dbt, state, args, days, target="daily", window=(days[0], days[-1]))


WINDOW_ENV = ("MLPLATFORM_DBT_MIN_DAY", "MLPLATFORM_DBT_MAX_DAY")


@contextmanager
def _window_in_environment(window: tuple[str, str] | None) -> Iterator[None]:
    """The build's days for dbt's process. Not as vars: dbt parses the whole project again whenever
    its vars change, and a day's build would pay that parse every time."""
    saved = {name: os.environ.get(name) for name in WINDOW_ENV}
    for name, day in zip(WINDOW_ENV, window or (None, None)):
        if day is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = day
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _use_case_nodes() -> list[dict]:
    """The models and seeds of the use case's folders of the dbt project."""
    manifest = json.loads(require_manifest().read_text())
    folder = active().dbt_folder
    return [node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")
            and node["original_file_path"].split("/")[1:2] == [folder]]


def check_declared_models(nodes: list[dict]) -> None:
    """Every dbt model the spec names (its prediction grain, its feature tables) is one of its
    folder's: a misspelt one would be a dependency on an asset that nothing builds."""
    from mlplatform.usecases import DEFS_DIR, SPEC_FILE, UseCaseError

    use_case, models = active(), {node["name"] for node in nodes}
    tables = use_case.features.tables
    named = {"prediction.model": [use_case.prediction.model], "features.tables.daily": tables.daily,
             "features.tables.reference": tables.reference, "features.tables.same_day": tables.same_day}
    missing = [f"{field}: {table!r}" for field, names in named.items() for table in names if table not in models]
    if missing:
        raise UseCaseError(f"{DEFS_DIR / use_case.name / SPEC_FILE}: {'; '.join(missing)}: no such dbt model in "
                           f"dbt_project/models/{use_case.dbt_folder}/ (its models: {', '.join(sorted(models)) or 'none'})")


def _has_reference_nodes(nodes: list[dict]) -> bool:
    """Whether the use case has models or seeds that are not daily (a use case may have none)."""
    return any("daily" not in node.get("tags", []) for node in nodes)


def _reference_models() -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=require_manifest(),
        project=dbt_project,
        select=USE_CASE_NODES,
        # Not the sources' tests: the raw assets own their data (their contract checks hold the same
        # keys), and dbt's result for a test on an asset it does not build reaches Dagster as a bare
        # observation, with a warning each. `dbt test --select source:raw` still runs them by hand.
        exclude="tag:daily source:*",
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
        name=named("dbt_reference_models"),
    )
    def dbt_reference_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                             state: PlatformState) -> Iterator[Any]:
        yield from _build(context, dbt, state, ["build", "--vars", json.dumps(use_case_vars(active()))], None,
                          target="reference")

    return dbt_reference_models


_NODES = _use_case_nodes()
check_declared_models(_NODES)
dbt_reference_models = _reference_models() if _has_reference_nodes(_NODES) else None
dbt_assets_defs = [a for a in (dbt_daily_models, dbt_reference_models) if a is not None]
