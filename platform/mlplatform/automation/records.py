"""The retrain sensor's record of its decisions, readable without loading the code location's jobs
(which load dbt): `mlplatform status` shows the latest."""

from __future__ import annotations

import json
from pathlib import Path

DECISIONS_LOG = "retrain_decisions.jsonl"


def decisions(home: Path) -> list[dict]:
    """Every retrain request the sensor made, oldest first."""
    path = home / DECISIONS_LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
