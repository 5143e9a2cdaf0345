"""What the benchmarks share: the machine's description, process measurement, summaries, and the
state directories they build with the platform's own commands."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# A model spec small enough to train on a few days (smoke runs) or a month (one-new-day history).
TINY_SPEC = {"MLPLATFORM_MODEL_HOLDOUT_DAYS": "2", "MLPLATFORM_MODEL_VALIDATION_DAYS": "2",
             "MLPLATFORM_MODEL_MIN_TRAIN_DAYS": "3", "MLPLATFORM_MODEL_MAX_EPOCHS": "2",
             "MLPLATFORM_MODEL_MIN_FIRST_AUC": "0", "MLPLATFORM_MODEL_GATE_AGAINST_BASELINES": "false", "MLPLATFORM_MODEL_MIN_TRAIN_ROWS": "100",
             "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_ROWS": "1000",
             # The benchmarks time the day-ahead model's pipeline, as before the live model existed.
             "MLPLATFORM_RETRAIN_LIVE_MODEL": "false"}
MONTH_SPEC = {"MLPLATFORM_MODEL_HOLDOUT_DAYS": "7", "MLPLATFORM_MODEL_VALIDATION_DAYS": "7",
              "MLPLATFORM_MODEL_GATE_AGAINST_BASELINES": "false", "MLPLATFORM_RETRAIN_LIVE_MODEL": "false"}  # timing, not model quality


def machine() -> str:
    gib = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {gib:.0f} GiB, {platform.python_version()}"


def platform_env(home: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the platform's commands against `home` (settings: MLPLATFORM_* variables)."""
    return {**os.environ, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "MLPLATFORM_SENSORS": "stopped", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **(settings or {})}


def measured(command: list[str], env: dict[str, str]) -> dict:
    """Run a command: its wall time and the peak resident memory of its process tree (sampled every
    0.1 s: the pipeline starts dbt and Feast processes of its own)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root, peak = psutil.Process(process.pid), 0
    output = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    reader.join(timeout=10)
    if process.returncode != 0:
        tail = b"".join(output[-40:]).decode(errors="replace")
        raise RuntimeError(f"{' '.join(command)} failed with exit code {process.returncode}:\n{tail}")
    return {"seconds": round(time.perf_counter() - started, 2), "peak_gib": round(peak / 2**30, 3),
            "output": b"".join(output).decode(errors="replace")}


def mlplatform(*args: str, home: Path, settings: dict[str, str] | None = None) -> dict:
    return measured([str(BIN / "mlplatform"), *args], platform_env(home, settings))


def figure(name: str, values: list[float], unit: str, target: str = "", met: bool | None = None,
           digits: int = 2) -> dict:
    """One line of a benchmark's table: the median of the runs and their range."""
    return {"figure": name, "unit": unit, "median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits), "runs": len(values),
            "values": [round(v, digits) for v in values], "target": target, "met": met}


@dataclass
class Context:
    """What a benchmark is given: its size (a smoke run is tiny), repeats, and a work directory.

    The history home (a year landed, built and with a champion, the last day left to land; a few
    days when smoke) is built once and shared. A smoke run takes it from its cold run's home, and
    the scale benchmark takes K = 1 from the cold runs, so that nothing is built twice."""

    smoke: bool
    work: Path
    repeats: int
    homes: dict[str, Path] = field(default_factory=dict)
    cold_runs: list[dict] = field(default_factory=list)
    scales: list[int] = field(default_factory=lambda: [1, 10, 30])

    @property
    def last_day(self) -> str:
        return "2013-01-09" if self.smoke else "2013-12-31"

    @property
    def spec(self) -> dict[str, str]:
        return TINY_SPEC if self.smoke else MONTH_SPEC

    def history_home(self, through: str | None = None) -> Path:
        """A state directory with the days through `through` (default: the day before the last)
        landed and built, and a champion."""
        from datetime import date, timedelta

        through = through or (date.fromisoformat(self.last_day) - timedelta(days=1)).isoformat()
        if through not in self.homes:
            home = self.work / f"history-{through}"
            mlplatform("replay", "--through", through, home=home)
            run = mlplatform("pipeline", home=home, settings=self.spec)
            if "champion: version" not in run["output"]:
                raise RuntimeError(f"no champion after the history through {through}:\n{run['output'][-2000:]}")
            self.homes[through] = home
        return self.homes[through]
