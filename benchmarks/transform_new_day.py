"""Benchmark: the time to build one new day of the transform stage, at 1 and 12 months of history.

For each history length H (days): a fresh state directory with the real data of the first H + 1
days in the lake, every day before the last built in one ranged run, then the daily dbt assets
materialized for the last day alone, several times (re-materializing a day costs what building it
new does: the incremental models replace that day). Reports the median and range of the step.

    python benchmarks/transform_new_day.py [--repeats 5] [--history 30 364]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def measure(history_days: int, repeats: int) -> dict:
    import dagster as dg

    from helpers import land_and_load, materialize_dbt
    from mlplatform.state import HOME_ENV, StatePaths

    last = date(2013, 1, 1) + timedelta(days=history_days)
    with tempfile.TemporaryDirectory() as tmp:
        paths = StatePaths.resolve(Path(tmp) / "home").ensure()
        os.environ[HOME_ENV] = str(paths.home)
        land_and_load(paths, last.isoformat())
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            assert materialize_dbt(instance, paths, reference=True).success
            started = time.perf_counter()
            assert materialize_dbt(instance, paths, first="2013-01-01",
                                   last=(last - timedelta(days=1)).isoformat()).success
            history_build_s = time.perf_counter() - started
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                result = materialize_dbt(instance, paths, day=last.isoformat())
                timings.append(time.perf_counter() - started)
                assert result.success
    return {"history_days": history_days, "new_day": last.isoformat(), "repeats": repeats,
            "median_s": round(statistics.median(timings), 2), "min_s": round(min(timings), 2),
            "max_s": round(max(timings), 2), "history_build_s": round(history_build_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--history", type=int, nargs="+", default=[30, 364])
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    results = {"benchmark": "transform_new_day", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "date": date.today().isoformat(), "runs": [measure(h, args.repeats) for h in args.history]}
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
