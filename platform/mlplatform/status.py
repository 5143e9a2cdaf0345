"""`mlplatform status`: what is landed, quarantined and loaded, read from the state directory."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq

from mlplatform.usecases import active
from mlplatform.features.training import latest_manifest
from mlplatform.ingest.lake import Lake
from mlplatform.ingest.landing import REASON_SUFFIX, LandingZone
from mlplatform.ingest.replay import Replayer
from mlplatform.state import StatePaths
from mlplatform.model.tracking import LIVE_MODEL, REGISTERED_MODEL
from mlplatform.model.tracking import store_exists as tracking_store_exists


DAILY_TABLES, REFERENCE_TABLES = active().daily_tables, active().reference_tables
METRIC = active().task.metric  # the use case's gate metric, as the holdout figure shown


def _span(days: list[str]) -> dict[str, Any]:
    return {"count": len(days), "first": days[0] if days else None, "last": days[-1] if days else None}


def collect_status(paths: StatePaths) -> dict[str, Any]:
    zone = LandingZone(paths.landing, paths.quarantine)
    lake = Lake(paths.lake)
    landed_through = Replayer(zone).landed_through()
    landing = {
        "landed_through": landed_through.isoformat() if landed_through else None,
        "reference": [t for t in REFERENCE_TABLES if zone.file(t).exists()],
        **{t: _span(zone.days(t)) for t in DAILY_TABLES},
    }
    quarantine = []
    if paths.quarantine.exists():
        for reason_file in sorted(paths.quarantine.rglob(f"*{REASON_SUFFIX}")):
            if not _own_quarantine(reason_file.relative_to(paths.quarantine).parts):
                continue  # another use case's table (they share the landing zone)
            reason = json.loads(reason_file.read_text())
            quarantine.append({"file": reason.get("quarantined_path"), "kind": reason.get("kind"),
                               "problem": reason.get("problem")})
    loaded: dict[str, Any] = {}
    for table in DAILY_TABLES:
        days = lake.days(table)
        rows = sum(pq.read_metadata(lake.path(table, d)).num_rows for d in days)
        rejected = sum(pq.read_metadata(p).num_rows
                       for p in (lake.rejects_path(table, d) for d in days) if p.exists())
        loaded[table] = {**_span(days), "rows": rows, "rejected_rows": rejected}
    for table in REFERENCE_TABLES:
        path = lake.path(table)
        loaded[table] = {"rows": pq.read_metadata(path).num_rows if path.exists() else None}
    exports = Lake(paths.exports)
    built: dict[str, Any] = {}
    if paths.exports.exists():
        for folder in sorted(p for p in paths.exports.iterdir() if p.is_dir() and p.name in _own_tables()):
            days = exports.days(folder.name)
            files = [exports.path(folder.name, d) for d in days] or [exports.path(folder.name)]
            built[folder.name] = {**(_span(days) if days else {"count": None}),
                                  "rows": sum(pq.read_metadata(f).num_rows for f in files if f.exists())}
    manifest = latest_manifest(paths.training_sets)
    training = None if manifest is None else {k: v for k, v in manifest.items() if k not in ("partitions", "columns")}
    return {"home": str(paths.home), "landing": landing, "quarantine": quarantine, "lake": loaded,
            "warehouse": built, "training_set": training, "models": _models(paths),
            "live_model": _models(paths, LIVE_MODEL) if LIVE_MODEL else {}, "stream": _stream(paths), "automation": _automation(paths)}


def _own_quarantine(parts: tuple[str, ...]) -> bool:
    """Whether a quarantined file is of this use case's tables: `<table>/<day>...` or
    `reference/<table>...`, as the landing zone lays them out."""
    if parts[0] in DAILY_TABLES:
        return True
    return len(parts) > 1 and parts[0] == "reference" and parts[1].split(".")[0] in REFERENCE_TABLES


def _own_tables() -> set[str]:
    """The warehouse tables of the use case this process serves (use cases share the warehouse): its
    dbt models, by their files' names (dbt is not loaded here), and its predictions."""
    from mlplatform.model.deployment import PREDICTIONS
    from mlplatform.model.shadow import SHADOW_PREDICTIONS
    from mlplatform.warehouse.project import DBT_PROJECT_DIR

    models = {p.stem for p in (DBT_PROJECT_DIR / "models" / active().dbt_folder).rglob("*.sql")}
    return models | {PREDICTIONS, SHADOW_PREDICTIONS}


def _stream(paths: StatePaths) -> dict[str, Any] | None:
    """The same-day stream: events published and consumed, and those set aside by reason."""
    from mlplatform.profile import current
    from mlplatform.streaming.topic import topic_file

    if not current().production and not topic_file(paths).exists():
        return None
    from mlplatform.streaming.consumer import stream_status

    return stream_status(paths)


def _automation(paths: StatePaths, last: int = 3) -> dict[str, Any]:
    """The latest retrain decisions that requested a run, and the latest failed runs."""
    from mlplatform.automation.records import decisions, failures

    return {"retrains": [{k: d[k] for k in ("at", "trigger", "reason")} for d in decisions(paths.own)[-last:]],
            "failures": [{k: f.get(k) for k in ("at", "job", "partition", "trigger", "failed_steps", "error")}
                         for f in failures(paths.home)[-last:]],
            **_runs(paths)}


def _runs(paths: StatePaths) -> dict[str, Any]:
    """From the Dagster instance: runs in progress whose process is gone, and stored days not refreshed."""
    if not (paths.dagster_home / "dagster.yaml").exists():
        return {"stuck_runs": [], "unrefreshed_days": []}
    from mlplatform.automation import instance_tables

    # Nothing in progress on the embedded instance: its tables answer, without loading Dagster.
    quick = instance_tables.read(paths.dagster_home)
    if quick is not None and quick["in_progress"] == 0:
        return {"stuck_runs": [], "unrefreshed_days": quick["unrefreshed_days"]}
    import dagster as dg

    from mlplatform.automation.progress import stored_unrefreshed
    from mlplatform.automation.recovery import dead_runs

    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        stuck = [{"run_id": run.run_id, "job": run.job_name, "status": run.status.value, "detail": detail}
                 for run, detail in dead_runs(instance)]
        return {"stuck_runs": stuck, "unrefreshed_days": list(stored_unrefreshed(instance))}


_LINEAGE_TAGS = ("training_window", "raw_partitions", "training_set_content_hash", "feature_service",
                 "feature_definitions_hash", "dbt_code_version", "dagster_run_id", "gate", "model_family")


def _models(paths: StatePaths, model: str = REGISTERED_MODEL) -> dict[str, Any]:
    """Registered versions of `model` and, for each alias, the lineage of the version it holds.

    Read with plain SQL from the registry's tables (MLflow's schema, the same in SQLite and
    PostgreSQL): starting MLflow's client costs 3 s of imports and schema checks here, longer than
    the rest of `status` together."""
    if not tracking_store_exists(paths):
        return {}
    import sqlalchemy as sa

    from mlplatform.model.tracking import tracking_uri

    engine = sa.create_engine(tracking_uri(paths))
    try:
        with engine.connect() as db:
            one = {"model": model}
            versions = db.execute(sa.text(
                "select count(*) from model_versions where name = :model "
                "and coalesce(current_stage, '') <> 'Deleted_Internal'"), one).scalar_one()
            aliases = db.execute(sa.text(
                "select a.alias, a.version, v.run_id from registered_model_aliases a join model_versions v "
                "on v.name = a.name and v.version = a.version where a.name = :model order by a.alias"), one).all()
            holders = {}
            for alias, version, run_id in aliases:
                run = {"run": run_id}
                tags = dict(db.execute(sa.text("select key, value from tags where run_uuid = :run"), run).all())
                params = dict(db.execute(sa.text("select key, value from params where run_uuid = :run"), run).all())
                auc = db.execute(sa.text("select value from latest_metrics where run_uuid = :run "
                                         "and key = :key"), {**run, "key": f"holdout_challenger_{METRIC}"}).scalar()
                holders[alias] = {"version": int(version), "mlflow_run_id": run_id,
                                  **{t: tags.get(t) for t in _LINEAGE_TAGS},
                                  "trained_on": params.get("split_train"), "holdout": params.get("split_holdout"),
                                  f"holdout_{METRIC}": float(auc) if auc is not None else None}
    except sa.exc.OperationalError:  # the store exists but has no registry tables yet
        return {}
    finally:
        engine.dispose()
    return {"registered_versions": int(versions), "aliases": holders}


def _format_model(lines: list[str], name: str, models: dict[str, Any]) -> None:
    lines += ["", f"model (MLflow registry: {name})"]
    if not models:
        lines.append("  nothing registered yet")
        return
    lines.append(f"  {models['registered_versions']} version(s) registered")
    for alias, held in models["aliases"].items():
        auc = held[f"holdout_{METRIC}"]
        lines.append(f"  @{alias}: version {held['version']} ({held['model_family'] or 'network'})"
                     + (f", holdout {METRIC} {auc:.4f}" if auc is not None else "") + f", gate {held['gate']}")
        lines.append(f"    trained on {held['trained_on']}, holdout {held['holdout']}; training set "
                     f"{(held['training_set_content_hash'] or '')[:16]} (raw {held['raw_partitions']})")
        lines.append(f"    features {held['feature_service']} {held['feature_definitions_hash']}, "
                     f"dbt {held['dbt_code_version']}, Dagster run {held['dagster_run_id']}")


def format_status(status: dict[str, Any]) -> str:
    landing, lake = status["landing"], status["lake"]
    lines = [f"state directory  {status['home']}", "",
             f"landed           through {landing['landed_through'] or '(nothing yet)'}; "
             f"reference tables: {', '.join(landing['reference']) or 'none'}"]
    for table in DAILY_TABLES:
        span = landing[table]
        lines.append(f"  {table:<14} {span['count']} day file(s) in the landing zone (loaded ones stay there)"
                     + (f", {span['first']} .. {span['last']}" if span["count"] else ""))
    lines += ["", f"quarantined      {len(status['quarantine'])} file(s)"]
    lines += [f"  {q['file']}\n    {q['kind']}: {q['problem']}" for q in status["quarantine"]]
    lines += ["", "raw lake"]
    for table in DAILY_TABLES:
        t = lake[table]
        span = f", {t['first']} .. {t['last']}" if t["count"] else ""
        lines.append(f"  raw_{table:<12} {t['count']} day(s){span}: {t['rows']} rows, "
                     f"{t['rejected_rows']} rejected")
    for table in REFERENCE_TABLES:
        rows = lake[table]["rows"]
        lines.append(f"  raw_{table:<12} " + ("not loaded" if rows is None else f"{rows} rows"))
    lines += ["", "warehouse (Parquet exports the later stages read)"]
    if not status["warehouse"]:
        lines.append("  nothing built yet")
    for model, t in status["warehouse"].items():
        span = f"{t['count']} day(s), {t['first']} .. {t['last']}: " if t["count"] else ""
        lines.append(f"  {model:<28} {span}{t['rows']} rows")
    training = status["training_set"]
    lines += ["", "training set (latest)"]
    if training is None:
        lines.append("  none built yet")
    else:
        window = training["window"]
        lines += [f"  {training['row_count']} rows, {window['first_day']} .. {window['last_day']} "
                  f"({training['days']} days), label rate {training['label_rate']:.3f}",
                  f"  feature service {training['feature_service']} (definitions {training['feature_definitions_hash']}), "
                  f"dbt code {training['dbt_code_version']}",
                  f"  content {training['content_hash'][:16]}  {training['path']}"]
    for key, name in (("models", REGISTERED_MODEL), ("live_model", LIVE_MODEL)):
        if name:
            _format_model(lines, name, status.get(key) or {})
    stream = status.get("stream")
    lines += ["", "same-day stream"]
    if not stream:
        lines.append("  no events published yet")
    else:
        bad = ", ".join(f"{n} {reason}" for reason, n in sorted(stream["set_aside_by_reason"].items())) or "none"
        lines.append(f"  {stream['published']} event(s) published, {stream['consumed']} consumed (through "
                     f"{stream['latest_event'] or 'none'}); set aside: {bad}")
        lines.append(f"  topic {stream['topic']}")
    automation = status["automation"]
    lines += ["", "automation (latest retrains and failed runs)"]
    lines += [f"  retrain {r['at'][:19]} {r['trigger']}: {r['reason']}" for r in automation["retrains"]] \
        or ["  no retrain requested yet"]
    lines += [f"  FAILED {f['at'][:19]} {f['job']} {f['partition'] or ''} ({f['trigger']}): "
              + "; ".join(f"{step}: {error}" for step, error in (f["failed_steps"] or {}).items())
              for f in automation["failures"]] or ["  no failed runs"]
    for run in automation["stuck_runs"]:
        lines.append(f"  STUCK {run['job']} run {run['run_id'][:8]} is {run['status']} but {run['detail']}: the next "
                     "`mlplatform pipeline` (or the daemon's run monitoring) marks it failed and redoes its work")
    days = automation["unrefreshed_days"]
    if days:
        lines.append(f"  {len(days)} stored day(s) not refreshed yet ({days[0]} .. {days[-1]}): `mlplatform pipeline` "
                     "or the downstream sensor refreshes them; no retrain starts before")
    return "\n".join(lines)
