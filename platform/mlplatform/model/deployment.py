"""Deployments: the champion alias moves only through the gate, and every move can be undone.

Promotion moves `champion` to the gated challenger and `previous_champion` to the version it
replaces; rollback swaps them back. The registry's `champion` alias is the one source of truth:
moving it is the commit, and every reader (the API, `status`, the retrain decision) reads it. Each
move is then appended to `deployments.jsonl` in the state directory and recorded in Dagster as a
`deployed_model` materialization; a crash between the alias and those records is reconciled at the
next start (`reconcile_log`, `automation/deployments.py`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlplatform.model.tracking import (
    CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, REGISTERED_MODEL, client, version_for_alias,
)
from mlplatform.model.tracking import store_exists as tracking_store_exists
from mlplatform.faults import crash_point
from mlplatform.state import StatePaths
from mlplatform.usecases import named

LOG = "deployments.jsonl"
# The export of the champion's scores of each day's rows (assets/deployed.py writes it).
# The warehouse table (and export) of the batch predictions, in the use case's namespace: the use
# cases share the warehouse.
PREDICTIONS = named("predictions")
LINEAGE_TAGS = ("training_window", "trained_through", "raw_partitions", "training_set_content_hash", "feature_service",
                "feature_service_version", "feature_definitions_hash", "dbt_code_version", "dagster_run_id")


class DeploymentError(RuntimeError):
    pass


def _log_path(paths: StatePaths, model: str = REGISTERED_MODEL) -> Path:
    # The live model keeps a log of its own: each log is one model's sequence of champions.
    return paths.own / (LOG if model == REGISTERED_MODEL else f"deployments-{model}.jsonl")


def record(paths: StatePaths, entry: dict[str, Any], model: str = REGISTERED_MODEL) -> dict[str, Any]:
    """Append an entry (with its time) to the model's deployment log."""
    entry = {"at": datetime.now(timezone.utc).isoformat(), **entry}
    with open(_log_path(paths, model), "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def history(paths: StatePaths, model: str = REGISTERED_MODEL) -> list[dict[str, Any]]:
    from mlplatform.automation.records import read_jsonl

    return read_jsonl(_log_path(paths, model))


def served_champion(paths: StatePaths) -> dict[str, Any] | None:
    """The champion as the registry holds it (the alias is the one source of truth: the API loads
    what it names), with what the retrain decision needs: its version, since when, the last day it
    trained on, its holdout figures. The deployment log is a record of moves, never consulted here,
    so a crash between moving the alias and writing the log cannot make two readers disagree."""
    if not tracking_store_exists(paths):
        return None
    held = version_for_alias(paths, CHAMPION)
    if held is None:
        return None
    facts = lineage(paths, held.version)
    window = facts.get("training_window") or ""  # versions registered before `trained_through` was a tag
    return {"version": int(held.version), "since": held.tags.get("deployed_at"),
            "trained_through": facts.get("trained_through") or (window.split("..")[-1] if ".." in window else None),
            "holdout": facts.get("holdout", {})}


def lineage(paths: StatePaths, version: str, model: str = REGISTERED_MODEL) -> dict[str, Any]:
    tracker = client(paths)
    run = tracker.get_run(tracker.get_model_version(model, version).run_id)
    return {"mlflow_run_id": run.info.run_id, **{t: run.data.tags.get(t) for t in LINEAGE_TAGS},
            "holdout": {k.removeprefix("holdout_challenger_"): v for k, v in run.data.metrics.items()
                        if k.startswith("holdout_challenger_")}}


def promote_challenger(paths: StatePaths, dagster_run_id: str | None = None,
                       model: str = REGISTERED_MODEL) -> dict[str, Any]:
    """Make the challenger the champion, if it passed the gate; keep the old champion for rollback."""
    tracker = client(paths)
    challenger = version_for_alias(paths, CHALLENGER, model)
    if challenger is None:
        raise DeploymentError("no challenger registered: nothing to deploy")
    if challenger.tags.get("gate") != "passed":
        raise DeploymentError(f"version {challenger.version} has not passed the evaluation gate "
                              f"(gate: {challenger.tags.get('gate', 'not evaluated')}): it cannot be deployed")
    current = version_for_alias(paths, CHAMPION, model)
    if current is not None and current.version == challenger.version:
        return {"action": "unchanged", "version": int(challenger.version),
                "previous_version": None, "lineage": lineage(paths, challenger.version, model)}
    at = datetime.now(timezone.utc).isoformat()
    tracker.set_model_version_tag(model, challenger.version, "deployed_at", at)
    if current is not None:
        tracker.set_registered_model_alias(model, PREVIOUS_CHAMPION, current.version)
    # The commit point: one row of the registry. Every reader follows the alias; what comes after
    # it (the log) is a record, reconciled from the alias if a crash cuts it short.
    tracker.set_registered_model_alias(model, CHAMPION, challenger.version)
    crash_point("after_champion_alias")
    return record(paths, {"at": at, "action": "promote", "version": int(challenger.version),
                           "previous_version": int(current.version) if current else None,
                           "dagster_run_id": dagster_run_id, "lineage": lineage(paths, challenger.version, model)},
                   model)


def rollback(paths: StatePaths, reason: str = "") -> dict[str, Any]:
    """Put the previous champion back; the one it replaces becomes the previous champion."""
    tracker = client(paths)
    previous = version_for_alias(paths, PREVIOUS_CHAMPION)
    current = version_for_alias(paths, CHAMPION)
    if previous is None or current is None or previous.version == current.version:
        raise DeploymentError("there is no previous champion to roll back to")
    at = datetime.now(timezone.utc).isoformat()
    tracker.set_model_version_tag(REGISTERED_MODEL, previous.version, "deployed_at", at)
    tracker.set_model_version_tag(REGISTERED_MODEL, current.version, "rolled_back_at", at)
    tracker.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, previous.version)
    tracker.set_registered_model_alias(REGISTERED_MODEL, PREVIOUS_CHAMPION, current.version)
    return record(paths, {"at": at, "action": "rollback", "version": int(previous.version),
                           "previous_version": int(current.version), "reason": reason})


def reconcile_log(paths: StatePaths) -> dict[str, Any] | None:
    """After a crash between the alias and the log: append the move the log missed (returned)."""
    held = version_for_alias(paths, CHAMPION) if tracking_store_exists(paths) else None
    logged = history(paths)
    logged_version = logged[-1]["version"] if logged else None
    if held is None or int(held.version) == logged_version:
        return None
    return record(paths, {"action": "reconcile", "version": int(held.version), "previous_version": logged_version,
                           "reason": "the registry's champion alias had moved without its log entry (a crash "
                                     "between the two)", "lineage": lineage(paths, held.version)})
