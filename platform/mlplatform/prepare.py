"""Prepares a state directory: its folders and the Dagster instance configuration."""

from __future__ import annotations

from mlplatform.ingest.files import write_bytes_atomically
from mlplatform.state import StatePaths

DAGSTER_YAML = """\
# Dagster instance configuration for the embedded default, written by `mlplatform prepare`.
# Storage is SQLite under this folder; point `storage:` at Postgres to scale out.
telemetry:
  enabled: false
"""


def prepare(paths: StatePaths) -> list[str]:
    """Create what a fresh state directory needs; keep what is already there. Says what it did."""
    done = [f"state directory: {paths.ensure().home}"]
    instance_config = paths.dagster_home / "dagster.yaml"
    if not instance_config.exists():
        write_bytes_atomically(instance_config, DAGSTER_YAML.encode())
        done.append(f"wrote {instance_config}")
    return done
