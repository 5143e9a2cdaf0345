"""Benchmark: cold end to end. An empty MLPLATFORM_HOME, 2013 landed, `mlplatform pipeline` to a
deployed champion; beside it `benchmarks/bare_pipeline.py` (plain DuckDB SQL and plain PyTorch).
Wall time, and peak memory of each process tree (sampled every 0.2 s: the pipeline starts dbt and
Feast processes of its own).

    python benchmarks/cold_end_to_end.py [--repeats 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def measured(command: list[str], env: dict) -> dict:
    """Run a command; its wall time and the peak of its process tree's resident memory."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed with exit code {process.returncode}")
    return {"seconds": round(time.perf_counter() - started, 1), "peak_gib": round(peak / 2**30, 2)}


def one_run() -> dict:
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "MLPLATFORM_HOME": home, "DAGSTER_HOME": f"{home}/dagster",
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        replay = measured([str(BIN / "mlplatform"), "replay", "--through", "2013-12-31"], env)
        pipeline = measured([str(BIN / "mlplatform"), "pipeline"], env)
        bare = measured([sys.executable, str(ROOT / "benchmarks" / "bare_pipeline.py"), "--work", work], env)
    return {"replay": replay, "pipeline": pipeline, "bare": bare,
            "ratio": round(pipeline["seconds"] / bare["seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.repeats)]
    result = {"benchmark": "cold_end_to_end", "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": runs,
              "median_pipeline_seconds": statistics.median(r["pipeline"]["seconds"] for r in runs),
              "median_bare_seconds": statistics.median(r["bare"]["seconds"] for r in runs),
              "median_ratio": statistics.median(r["ratio"] for r in runs)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
