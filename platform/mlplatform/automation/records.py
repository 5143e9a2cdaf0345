"""The platform's JSON-lines records (the retrain sensor's decisions, the failed runs, the alerts),
read without loading Dagster or the code location's jobs (which load dbt): `mlplatform status`
shows the latest of each.
"""

from __future__ import annotations

import json
from pathlib import Path

DECISIONS_LOG = "retrain_decisions.jsonl"
FAILURES_LOG = "run_failures.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    """Every entry of a JSON-lines file, oldest first; none when it does not exist yet."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def decisions(home: Path) -> list[dict]:
    """Every retrain request the sensor made, oldest first."""
    return read_jsonl(home / DECISIONS_LOG)


def failures(home: Path) -> list[dict]:
    """Every failed run the run-failure sensor recorded, oldest first."""
    return read_jsonl(home / FAILURES_LOG)
