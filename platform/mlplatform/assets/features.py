"""Feature stage, Feast half: definitions applied, days materialized online, training sets built.

The dbt feature tables (group `features` too) are Feast's offline sources, through their Parquet
exports. `feature_definitions` applies the repository when it changes; `online_features` writes each
built day into the online store (and a skew check compares it with the offline store);
`training_set` joins the labeled prediction rows with the feature service point-in-time and writes the set with
its manifest. Feast is imported only when these run.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg

from mlplatform.assets.ui import table
from mlplatform.partitions import TIMEZONE
from mlplatform.features.repo import applied_hash, apply_definitions, definitions_hash, open_store
from mlplatform.features.service import PREDICTION_KEY, LIVE_SERVICE_NAME, SERVICE_NAME, SERVICE_VERSION
from mlplatform.model.lines import LINES, ModelLine
from mlplatform.partitions import daily_partitions
from mlplatform.resources import ModelSpec, PlatformState
from mlplatform.usecases import active, named
from mlplatform.warehouse.project import dbt_code_version

GROUP = "features"
KINDS = {"feast", "python"}
# The dbt feature tables behind the use case's feature services (its spec's `features.tables`).
_TABLES = active().features.tables
DAILY_FEATURE_TABLES, REFERENCE_FEATURE_TABLES, SAME_DAY_FEATURE_TABLES = _TABLES.daily, _TABLES.reference, _TABLES.same_day


@dg.asset(
    name=named("feature_definitions"),
    group_name=GROUP,
    kinds=KINDS,
    code_version=definitions_hash(),
    description="`feast apply` of feature_repo/: entities, feature views, the on-demand calendar "
                "features and the versioned feature service. Re-applies only when the definitions change.",
)
def feature_definitions(context: dg.AssetExecutionContext, state: PlatformState) -> dg.MaterializeResult:
    paths = state.paths
    wanted = definitions_hash()
    if applied_hash(paths) == wanted:
        context.log.info(f"feature definitions {wanted} already applied; nothing to do")
        changed = False
    else:
        apply_definitions(paths)
        changed = True
    store = open_store(paths)
    service = store.get_feature_service(SERVICE_NAME)
    return dg.MaterializeResult(metadata={
        "definitions_hash": wanted,
        "applied": changed,
        "feature_service": SERVICE_NAME,
        "feature_service_version": SERVICE_VERSION,
        "feature_views": sorted(p.name for p in service.feature_view_projections),
        "features": sum(len(p.features) for p in service.feature_view_projections),
        "registry": dg.MetadataValue.path(str(paths.feast / "registry.db")),
    })


class OnlineMaterializationConfig(dg.Config):
    full: bool = False
    """Rewrite the online store from the first day up to this partition."""


@dg.asset(
    name=named("online_features"),
    group_name=GROUP,
    kinds=KINDS | {"sqlite"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=[feature_definitions, *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES],
    description="The day's newest feature values materialized into Feast's online store (SQLite by "
                "default), for serving. Days are written in order; an older day never overwrites newer values.",
)
def online_features(context: dg.AssetExecutionContext, config: OnlineMaterializationConfig,
                    state: PlatformState) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    store = open_store(state.paths)
    started = datetime.now(timezone.utc)
    from mlplatform.features.online import materialize, service_views, source_rows

    try:
        done = materialize(store, SERVICE_NAME, start, end, full=config.full, exports=state.exports)
    except Exception as err:
        if "disk is full" in str(err) or "No space left" in str(err) or "read-only" in str(err):
            # SQLite's message names no file: say which, and what happens next.
            raise dg.Failure(f"the online store under {state.paths.feast} could not be written ({err}). Views "
                             "written before are kept; free space (or make it writable) and the refresh is "
                             "retried by the next tick or `mlplatform pipeline`", allow_retries=False) from err
        raise
    days = [d.date().isoformat() for d in _days(window.start, window.end)]
    views = service_views(store, SERVICE_NAME)  # read after materializing: their end times moved
    rows = {v.name: len(source_rows(state.exports, v, days)) for v in views if v.name in done.views}
    freshest = max((v.most_recent_end_time for v in views if v.most_recent_end_time), default=None)
    if done.superseded:
        context.log.warning(f"newer days are already online for {done.superseded}: left as they are "
                            "(materialize with full: true to rewrite)")
    for view, why in done.rebuilt.items():
        context.log.warning(f"the online store had lost rows of {view} ({why}): rewritten from the offline "
                            "store, from the first day")
    return dg.MaterializeResult(metadata={
        "rows_written": sum(rows.values()),
        "rows_by_view": rows,
        "superseded_views": done.superseded,
        "rebuilt_views": done.rebuilt,
        "freshest_timestamp": freshest.isoformat() if freshest else "none",
        "window": f"{start.isoformat()} .. {end.isoformat()}",
        "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 2),
    })


def _days(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


@dg.asset_check(asset=online_features,
                description="The online store holds what it should: for a sample of the entities of every "
                            "view (their newest rows within the days materialized), it has each one, with "
                            "the offline store's values. Fails on missing rows (a store that lost keys) or "
                            "stale or skewed values; the next materialization rebuilds a store that lost rows.")
def online_matches_offline(context: dg.AssetCheckExecutionContext, state: PlatformState) -> dg.AssetCheckResult:
    from mlplatform.features.online import check_online

    store = open_store(state.paths)
    report = check_online(store, SERVICE_NAME, state.exports)
    examples = [{"problem": "missing", **m} for m in report.missing[:5]] + \
               [{"problem": "differs", **m} for m in report.stale[:5]]
    return dg.AssetCheckResult(passed=report.passed, metadata={
        "online_through": _online_through(store) or "none", "entities_sampled": report.entities,
        "values_compared": report.compared, "missing_entities": len(report.missing),
        "mismatches": len(report.stale),
        "examples": table({k: str(v) for k, v in m.items()} for m in examples),
    })


def _online_through(store) -> str:
    """The last local day wholly in the online store ("" when nothing is)."""
    from mlplatform.features.online import service_views

    ends = [v.most_recent_end_time for v in service_views(store, SERVICE_NAME) if v.most_recent_end_time]
    if not ends:
        return ""
    # A day's window ends at the next local midnight.
    return (min(ends).astimezone(ZoneInfo(TIMEZONE)) - timedelta(minutes=1)).date().isoformat()


class TrainingWindow(dg.Config):
    first_day: str | None = None
    """First day of rows to train on (YYYY-MM-DD); unset: the first day built."""
    last_day: str | None = None
    """Last day of rows to train on; unset: the last day built."""


def training_set_asset(line: ModelLine) -> dg.AssetsDefinition:
    """The training set of a model line: the day-ahead service as of each row's request time and,
    for the live line, the same-day service as of `same_day_lead_minutes` before it."""
    same_day = (" and, as of `model_spec.same_day_lead_minutes` before the request time, the same-day "
                "features of the stream" if line.same_day else "")

    @dg.asset(
        name=line.key("training_set"),
        group_name=GROUP,
        kinds=KINDS | {"parquet"},
        deps=[feature_definitions, active().prediction.model, *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES,
              *(SAME_DAY_FEATURE_TABLES if line.same_day else [])],
        description="Every labeled row of the training window (a seeded sample beyond the model spec's "
                    "`max_training_rows`) joined point-in-time, through Feast, with the feature service"
                    f"{same_day}; Parquet plus a manifest (window, days, service version, definitions hash, "
                    "dbt code version, rows, label rate, content hash).",
    )
    def training_set(context: dg.AssetExecutionContext, config: TrainingWindow, state: PlatformState,
                     model_spec: ModelSpec) -> dg.MaterializeResult:
        return _build_training_set(context, config, state, model_spec, line)

    return training_set


def _build_training_set(context: dg.AssetExecutionContext, config: TrainingWindow, state: PlatformState,
                        model_spec: ModelSpec, line: ModelLine) -> dg.MaterializeResult:
    # Imported here: pyarrow and pandas cost the code location's load otherwise, in every process.
    from mlplatform.features.training import (
        TrainingWindowError, labeled_rows, retrieve, retrieve_same_day, write_training_set,
    )
    from mlplatform.ml.drift import training_set_profile

    paths = state.paths
    try:
        rows, days = labeled_rows(state.exports, config.first_day, config.last_day,
                                        max_rows=model_spec.max_training_rows, seed=model_spec.seed)
    except TrainingWindowError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
    store = open_store(paths)
    frame = retrieve(store, rows, SERVICE_NAME)
    services, lead = SERVICE_NAME, None
    if line.same_day:
        lead = model_spec.same_day_lead_minutes
        frame = frame.merge(retrieve_same_day(store, rows, lead), on=PREDICTION_KEY, how="left")
        services = f"{SERVICE_NAME}+{LIVE_SERVICE_NAME}"
    built = write_training_set(frame, line.training_sets(paths), {
        "window": {"first_day": days[0], "last_day": days[-1]},
        "days": len(days),
        "partitions": days,
        "labeled_rows_in_window": rows.attrs["labeled_rows"],
        "sampled_to": model_spec.max_training_rows if len(rows) < rows.attrs["labeled_rows"] else None,
        "feature_service": services,
        "feature_service_version": SERVICE_VERSION,
        "same_day_lead_minutes": lead,
        "feature_definitions_hash": definitions_hash(),
        "dbt_code_version": dbt_code_version(),
        "dagster_run_id": context.run.run_id,
    })
    manifest = built.manifest
    training_set_profile(built.path, frame)  # the reference that `feature_drift` compares each day with
    context.log.info(f"training set of {manifest['row_count']} rows at {built.path}")
    return dg.MaterializeResult(metadata={
        **{k: v for k, v in manifest.items() if k not in ("partitions", "columns", "window", "path", "same_day_lead_minutes")},
        "same_day_lead_minutes": lead if lead is not None else "none",
        "window": f"{days[0]} .. {days[-1]}",
        "path": dg.MetadataValue.path(str(built.path)),
        "dagster/row_count": manifest["row_count"],
        "manifest": dg.MetadataValue.json(manifest),
    })


feature_assets = [feature_definitions, online_features, *(training_set_asset(line) for line in LINES)]
feature_checks = [online_matches_offline]
