"""Prepares a checkout to run: the state directory, the Dagster instance, the MLflow store, the dbt
manifest. Done once, under a lock, so any number of commands started at once on a new state
directory create each store exactly once (two pipelines started at once on a new directory were
seen to leave Dagster's SQLite storage with two alembic heads, for good)."""

from __future__ import annotations

import json

from mlplatform.ingest.files import write_bytes_atomically
from mlplatform.locks import file_lock
from mlplatform.state import StatePaths

DAGSTER_YAML = """\
# Dagster instance configuration for the embedded default, written by `mlplatform prepare`.
# Storage is SQLite under this folder; point `storage:` at Postgres to scale out.
telemetry:
  enabled: false
concurrency:
  pools:
    # Every pool admits one step at a time: `warehouse` (DuckDB allows one writer).
    default_limit: 1
  runs:
    # Each run is a process that loads the code location: on a laptop, more at once only thrash.
    max_concurrent_runs: 2
# Dagster's launcher, able to tell whether a run's process is still alive: with run monitoring
# (the daemon), a run whose process died (kill -9, out of memory) is marked failed, not left
# STARTED forever, and its pool slots are freed.
run_launcher:
  module: mlplatform.automation.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  start_timeout_seconds: 180
  free_slots_after_run_end_seconds: 15
"""

# Written last, once every store exists: its absence means "prepare again".
PREPARED = ".prepared.json"
STORES_VERSION = 1


def prepare(paths: StatePaths) -> list[str]:
    """Create what a fresh checkout needs; keep what is already there. Says what it did."""
    from mlplatform.warehouse.project import manifest_is_current, prepare_manifest

    done = [f"state directory: {paths.ensure().home}"]
    marker = paths.home / PREPARED
    with file_lock(paths.home / ".prepare.lock", what="another command preparing this state directory"):
        instance_config = paths.dagster_home / "dagster.yaml"
        if not instance_config.exists():
            write_bytes_atomically(instance_config, DAGSTER_YAML.encode())
            done.append(f"wrote {instance_config}")
        if not manifest_is_current():
            done.append(f"parsed the dbt project into {prepare_manifest()}")
        if not _prepared(marker):
            done += _create_stores(paths)
            write_bytes_atomically(marker, json.dumps({"stores_version": STORES_VERSION}).encode())
    return done


def _prepared(marker) -> bool:
    try:
        return json.loads(marker.read_text()).get("stores_version") == STORES_VERSION
    except (OSError, ValueError):
        return False


def _create_stores(paths: StatePaths) -> list[str]:
    """Dagster's storage and MLflow's tracking store, created (and migrated) by one process."""
    import dagster as dg

    from mlplatform.model.tracking import ensure_experiment

    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        instance.get_runs(limit=1)
    ensure_experiment(paths)
    return [f"created the Dagster storage in {paths.dagster_home}", f"created the MLflow store in {paths.mlflow}"]
