"""The champion as Dagster shows it, kept equal to the registry's `champion` alias.

A promotion is recorded by the `deployed_model` materialization of its run; a rollback (from the
command line, outside any run) and a reconciliation after a crash are recorded as runless
materializations of the same asset, so the UI's latest `deployed_model` always names the version
that MLflow serves.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlplatform.state import StatePaths
from mlplatform.model.tracking import store_exists as tracking_store_exists
from mlplatform.usecases import named

DEPLOYED = dg.AssetKey(named("deployed_model"))  # the main line's champion


def record_in_dagster(instance: dg.DagsterInstance, entry: dict[str, Any]) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=DEPLOYED, description=f"{entry['action']}: champion is version {entry['version']}",
        metadata={"action": entry["action"], "champion_version": entry["version"],
                  "previous_champion_version": entry.get("previous_version") or "none",
                  "reason": entry.get("reason", "")}))


def dagster_champion(instance: dg.DagsterInstance, key: dg.AssetKey = DEPLOYED) -> int | None:
    """The champion the newest `deployed_model` materialization names (None: none yet, or a first
    challenger the gate refused, recorded with no champion)."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("champion_version")
    return int(value.value) if value is not None else None


def reconcile_champion(paths: StatePaths, instance: dg.DagsterInstance) -> list[str]:
    """Bring the deployment log and Dagster to the registry's champion; says what it changed."""
    from mlplatform.model.deployment import reconcile_log
    from mlplatform.model.tracking import CHAMPION, version_for_alias

    if not tracking_store_exists(paths):
        return []
    done = []
    logged = reconcile_log(paths)
    if logged:
        done.append(f"the deployment log missed champion version {logged['version']}: recorded")
    held = version_for_alias(paths, CHAMPION)
    if held is not None and dagster_champion(instance) != int(held.version):
        record_in_dagster(instance, {"action": "reconcile", "version": int(held.version),
                                     "reason": "Dagster's latest deployed_model named another version"})
        done.append(f"Dagster's deployed_model now names champion version {held.version}")
    return done
