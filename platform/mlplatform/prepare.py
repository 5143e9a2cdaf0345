"""Prepares a checkout to run: the state directory, the Dagster instance config, the dbt manifest."""

from __future__ import annotations

from mlplatform.ingest.files import write_bytes_atomically
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
"""


def prepare(paths: StatePaths) -> list[str]:
    """Create what a fresh checkout needs; keep what is already there. Says what it did."""
    from mlplatform.warehouse.project import manifest_is_current, prepare_manifest

    done = [f"state directory: {paths.ensure().home}"]
    instance_config = paths.dagster_home / "dagster.yaml"
    if not instance_config.exists():
        write_bytes_atomically(instance_config, DAGSTER_YAML.encode())
        done.append(f"wrote {instance_config}")
    if not manifest_is_current():
        done.append(f"parsed the dbt project into {prepare_manifest()}")
    return done
