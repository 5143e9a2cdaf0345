"""Benchmark 2: one new day. With a month and with a year of history (and a champion), the time
from a day's files landing to its features being online and the retrain decision made.

What is timed is what the sensors' runs do for a landed day, in a new process each time (the
daemon starts a process per run, which loads the code location and its libraries): the landing
planner, the day's `raw_daily` run, the `daily_refresh` run (dbt's daily models, online features,
drift, batch predictions, live performance), then the retrain decision (`mlplatform pipeline
--no-retrain`'s path). The sensors' polling intervals (5 s, 15 s) are not in it. The first repeat
is the day landing new; the others deliver the same files again, which the platform takes as a
re-delivery and rebuilds the same way.

    python benchmarks/run.py one_new_day
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from common import Context, figure, platform_env

# Issue 32: one new day, landing to online features and the retrain decision, in at most 10 s; a
# year of history costs at most a fifth more than a month.
TARGET_S, TARGET_RATIO = 10.0, 1.2


def measure_in_process(home: Path, day: str, redeliver: bool) -> dict:
    """(In the child process.) Land `day` (or deliver its files again), run what the sensors would."""
    from mlplatform.defs.flights.feed import DAILY_TABLES
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer
    from mlplatform.pipeline import run_pipeline
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(home)
    zone = LandingZone(paths.landing, paths.quarantine)
    if redeliver:  # the same rows in another order: new bytes (the same bytes again are a no-op), same data
        for table in DAILY_TABLES:
            header, *rows = zone.file(table, day).read_bytes().splitlines(keepends=True)
            zone.deliver(table, day, header + b"".join(reversed(rows)))
    else:
        Replayer(zone, scale=1).replay(through=date.fromisoformat(day))
    result = run_pipeline(paths, say=lambda _: None, retrain=False)
    if result.failed or not result.runs:
        raise RuntimeError(f"the new day's runs failed: {result.failed or 'none ran'}")
    return {"decision": result.retrain_decision, "runs": {r.job: r.seconds for r in result.runs}}


def measure(ctx: Context, home: Path, day: str) -> list[dict]:
    """Each repeat in a new process, as the daemon runs each run: the code location and the
    libraries (Feast, MLflow, PyTorch) are loaded every time."""
    timings = []
    for repeat in range(ctx.repeats):
        started = time.perf_counter()
        answer = subprocess.run([sys.executable, __file__, "--home", str(home), "--day", day]
                                + (["--redeliver"] if repeat else []),
                                env=platform_env(home, ctx.spec), capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if answer.returncode != 0:
            raise RuntimeError(f"one_new_day failed for {day}:\n{answer.stderr[-3000:]}")
        timings.append({"seconds": round(seconds, 2), **json.loads(answer.stdout.strip().splitlines()[-1])})
    return timings


def bench(ctx: Context) -> dict:
    # A smoke run measures its one short history (two would build two homes).
    histories = {"year": ctx.last_day} if ctx.smoke else {"month": "2013-01-31", "year": ctx.last_day}
    results, figures = {}, []
    for name, day in histories.items():
        before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        results[name] = measure(ctx, ctx.history_home(before), day)
        seconds = [t["seconds"] for t in results[name]]
        figures.append(figure(f"{name} of history ({day} lands): online and decided", seconds, "s",
                              target=f"<= {TARGET_S:g}", met=max(seconds) <= TARGET_S))
    if len(figures) == 2:
        ratio = figures[1]["median"] / figures[0]["median"]
        figures.append(figure("year / month", [ratio], "x", target=f"< {TARGET_RATIO}", met=ratio < TARGET_RATIO))
    return {"title": "One new day, a month and a year of history", "figures": figures, "runs": results}


BENCHMARKS = {"one_new_day": bench}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--day", required=True)
    parser.add_argument("--redeliver", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure_in_process(args.home, args.day, args.redeliver)))
