"""The embedded Dagster instance's SQLite tables, read with plain SQL for `mlplatform status`.

Loading a Dagster instance costs about two seconds of imports before the first query; `status`
wants two answers that two small queries give: whether any run is in progress, and which stored days
were not carried downstream yet (`progress.unrefreshed`, the comparison Dagster's answer goes through).
When a run is in progress, judging whether its process still lives needs Dagster itself
(`recovery.dead_runs`), and so does any other storage (the production profile's PostgreSQL, or a
`storage:` section added to dagster.yaml): then `read` answers None and the caller asks Dagster.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from mlplatform.automation.progress import DAY_DONE_ASSET, RAW_DAILY_ASSETS, UNFINISHED_STATUSES, unrefreshed

MATERIALIZATION = "ASSET_MATERIALIZATION"


def _embedded(dagster_home: Path) -> tuple[Path, Path] | None:
    """The run and event index databases of Dagster's default SQLite storage, if that is what the
    instance uses."""
    import yaml

    config = yaml.safe_load((dagster_home / "dagster.yaml").read_text()) or {}
    if any(key in config for key in ("storage", "run_storage", "event_log_storage")):
        return None
    runs, index = dagster_home / "history" / "runs.db", dagster_home / "history" / "runs" / "index.db"
    return (runs, index) if runs.exists() and index.exists() else None


def _latest_by_partition(index: sqlite3.Connection, asset: str) -> dict[str, int]:
    rows = index.execute("select partition, max(id) from event_logs where asset_key = ? and dagster_event_type = ? "
                         "and partition is not null group by partition", (json.dumps([asset]), MATERIALIZATION))
    return dict(rows.fetchall())


def read(dagster_home: Path) -> dict | None:
    """{"in_progress": run count, "unrefreshed_days": [day, ...]}, or None where Dagster must answer."""
    databases = _embedded(dagster_home)
    if databases is None:
        return None
    runs_db, index_db = databases
    try:
        # Read-only: status never writes, and never waits on a writer for long.
        with closing(sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True, timeout=5)) as runs:
            marks = ",".join("?" * len(UNFINISHED_STATUSES))
            in_progress = runs.execute(f"select count(*) from runs where status in ({marks})",
                                    UNFINISHED_STATUSES).fetchone()[0]
        with closing(sqlite3.connect(f"file:{index_db}?mode=ro", uri=True, timeout=5)) as index:
            stored = [_latest_by_partition(index, asset) for asset in RAW_DAILY_ASSETS]
            refreshed = _latest_by_partition(index, DAY_DONE_ASSET)
    except sqlite3.Error:  # a schema this code does not know, or a lock held too long: Dagster answers
        return None
    return {"in_progress": in_progress, "unrefreshed_days": list(unrefreshed(stored, refreshed))}
