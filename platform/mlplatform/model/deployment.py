"""Deployments: the champion alias moves only through the gate, and every move can be undone.

Promotion moves `champion` to the gated challenger and `previous_champion` to the version it
replaces; rollback swaps them back. Each move is appended to `deployments.jsonl` in the state
directory (and tagged on the versions), so the history of what served when is never lost.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlplatform.model.tracking import (
    CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, REGISTERED_MODEL, client, version_for_alias,
)
from mlplatform.state import StatePaths

LOG = "deployments.jsonl"
LINEAGE_TAGS = ("training_window", "raw_partitions", "training_set_content_hash", "feature_service",
                "feature_service_version", "feature_definitions_hash", "dbt_code_version", "dagster_run_id")


class DeploymentError(RuntimeError):
    pass


def _log_path(paths: StatePaths) -> Path:
    return paths.home / LOG


def _record(paths: StatePaths, entry: dict[str, Any]) -> dict[str, Any]:
    entry = {"at": datetime.now(timezone.utc).isoformat(), **entry}
    with open(_log_path(paths), "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def history(paths: StatePaths) -> list[dict[str, Any]]:
    path = _log_path(paths)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def served_champion(paths: StatePaths) -> dict[str, Any] | None:
    """The champion as the deployment log records it, without reading the registry (sensors call this
    every tick): its version, since when, the last day it trained on, its holdout figures."""
    entries = history(paths)
    if not entries:
        return None
    version = entries[-1]["version"]
    promoted = [e for e in entries if e["action"] == "promote" and e["version"] == version]
    lineage = promoted[-1].get("lineage", {}) if promoted else {}
    window = lineage.get("training_window") or ""
    return {"version": version, "since": entries[-1]["at"],
            "trained_through": window.split("..")[-1] if ".." in window else None,
            "holdout": lineage.get("holdout", {})}


def lineage(paths: StatePaths, version: str) -> dict[str, Any]:
    tracker = client(paths)
    run = tracker.get_run(tracker.get_model_version(REGISTERED_MODEL, version).run_id)
    return {"mlflow_run_id": run.info.run_id, **{t: run.data.tags.get(t) for t in LINEAGE_TAGS},
            "holdout": {k.removeprefix("holdout_challenger_"): v for k, v in run.data.metrics.items()
                        if k.startswith("holdout_challenger_")}}


def promote_challenger(paths: StatePaths, dagster_run_id: str | None = None) -> dict[str, Any]:
    """Make the challenger the champion, if it passed the gate; keep the old champion for rollback."""
    tracker = client(paths)
    challenger = version_for_alias(paths, CHALLENGER)
    if challenger is None:
        raise DeploymentError("no challenger registered: nothing to deploy")
    if challenger.tags.get("gate") != "passed":
        raise DeploymentError(f"version {challenger.version} has not passed the evaluation gate "
                              f"(gate: {challenger.tags.get('gate', 'not evaluated')}): it cannot be deployed")
    current = version_for_alias(paths, CHAMPION)
    if current is not None and current.version == challenger.version:
        return {"action": "unchanged", "version": int(challenger.version),
                "previous_version": None, "lineage": lineage(paths, challenger.version)}
    if current is not None:
        tracker.set_registered_model_alias(REGISTERED_MODEL, PREVIOUS_CHAMPION, current.version)
    tracker.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, challenger.version)
    entry = _record(paths, {"action": "promote", "version": int(challenger.version),
                            "previous_version": int(current.version) if current else None,
                            "dagster_run_id": dagster_run_id, "lineage": lineage(paths, challenger.version)})
    tracker.set_model_version_tag(REGISTERED_MODEL, challenger.version, "deployed_at", entry["at"])
    return entry


def rollback(paths: StatePaths, reason: str = "") -> dict[str, Any]:
    """Put the previous champion back; the one it replaces becomes the previous champion."""
    tracker = client(paths)
    previous = version_for_alias(paths, PREVIOUS_CHAMPION)
    current = version_for_alias(paths, CHAMPION)
    if previous is None or current is None:
        raise DeploymentError("there is no previous champion to roll back to")
    tracker.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, previous.version)
    tracker.set_registered_model_alias(REGISTERED_MODEL, PREVIOUS_CHAMPION, current.version)
    entry = _record(paths, {"action": "rollback", "version": int(previous.version),
                            "previous_version": int(current.version), "reason": reason})
    tracker.set_model_version_tag(REGISTERED_MODEL, current.version, "rolled_back_at", entry["at"])
    return entry
