"""Benchmark: Feast over the warehouse exports, for a year of flights.

Builds (or reuses, with --home) a state directory with the whole of 2013 through dbt, then measures:
  - historical retrieval: the training set's point-in-time join of every flight with the feature
    service, with the DuckDB offline store (the platform's choice) or Feast's file (dask) store;
  - online materialization: the whole year at once, and one new day.
Each retrieval runs in a subprocess, so that its peak memory is its own (and an out-of-memory kill
is reported, not fatal).

    python benchmarks/feature_store.py [--home DIR] [--repeats 3] [--offline-store duckdb file]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RETRIEVE = """
import sys, time, json
from pathlib import Path
from mlplatform.features.training import labeled_rows, retrieve
from mlplatform.features.service import SERVICE_NAME
from mlplatform.ingest.lake import Lake
from mlplatform.state import StatePaths
from feast import FeatureStore
paths = StatePaths.resolve()
flights, days = labeled_rows(Lake(paths.exports), None, sys.argv[2] if len(sys.argv) > 2 else None)
store = FeatureStore(repo_path=sys.argv[1])
started = time.perf_counter()
frame = retrieve(store, flights, SERVICE_NAME)
import resource
print(json.dumps({"seconds": time.perf_counter() - started, "rows": len(frame),
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def build_year(home: Path) -> None:
    import dagster as dg

    from helpers import land_and_load, materialize_dbt
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(home).ensure()
    land_and_load(paths, "2013-12-31")
    with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
        assert materialize_dbt(instance, paths, reference=True).success
        assert materialize_dbt(instance, paths, first="2013-01-01", last="2013-12-31").success


def repo_for(store_type: str, workdir: Path) -> Path:
    """A copy of feature_repo/ using the given offline store, with its own registry."""
    repo = workdir / f"repo-{store_type}"
    shutil.copytree(ROOT / "feature_repo", repo, dirs_exist_ok=True)
    config = (repo / "feature_store.yaml").read_text()
    config = config.replace("type: duckdb", f"type: {store_type}")
    config = config.replace("feast/registry.db", f"feast/registry-{store_type}.db")
    config = config.replace("feast/online_store.db", f"feast/online-{store_type}.db")
    (repo / "feature_store.yaml").write_text(config)
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    sys.path.insert(0, str(repo))
    cwd = os.getcwd()
    apply_total(load_repo_config(repo, repo / "feature_store.yaml"), repo, skip_source_validation=True)
    os.chdir(cwd)
    return repo


def retrieval(repo: Path, repeats: int, last_day: str | None, memory_limit_gib: float) -> dict:
    limit = int(memory_limit_gib * 2**30)

    def cap_memory() -> None:  # in the child: fail with MemoryError instead of exhausting the machine
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    runs, peaks, failure, result = [], [], None, {}
    for _ in range(repeats):
        child = subprocess.Popen([sys.executable, "-c", RETRIEVE, str(repo), *([last_day] if last_day else [])],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=cap_memory)
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            out_of_memory = child.returncode < 0 or "MemoryError" in stderr
            failure = f"exit {child.returncode}" + (f" (out of memory at the {memory_limit_gib} GiB cap)"
                                                    if out_of_memory else f": {stderr[-500:]}")
            break
        result = json.loads(stdout.strip().splitlines()[-1])
        runs.append(result["seconds"])
        peaks.append(result["peak_kib"])  # the child's own peak (Linux reports KiB)
    if failure:
        return {"failed": failure}
    return {"rows": result["rows"], "median_s": round(statistics.median(runs), 2),
            "min_s": round(min(runs), 2), "max_s": round(max(runs), 2),
            "peak_rss_gib": round(max(peaks) / 2**20, 2)}


def materialization(repo: Path) -> dict:
    from feast import FeatureStore

    from mlplatform.features.online import materialize
    from mlplatform.features.service import SERVICE_NAME

    store = FeatureStore(repo_path=str(repo))
    started = time.perf_counter()
    materialize(store, SERVICE_NAME, datetime(2013, 1, 1, 5, tzinfo=timezone.utc),
                datetime(2013, 12, 31, 5, tzinfo=timezone.utc), full=True)
    year_s = time.perf_counter() - started
    started = time.perf_counter()
    materialize(store, SERVICE_NAME, datetime(2013, 12, 31, 5, tzinfo=timezone.utc),
                datetime(2014, 1, 1, 5, tzinfo=timezone.utc))
    return {"year_s": round(year_s, 2), "one_day_s": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=None, help="a state directory with 2013 built (reused)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--offline-store", nargs="+", default=["duckdb", "file"])
    parser.add_argument("--last-day", default=None, help="retrieve flights up to this day only")
    parser.add_argument("--memory-limit-gib", type=float, default=8.0,
                        help="address-space cap for each retrieval subprocess")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        os.environ["MLPLATFORM_HOME"] = str(home)
        if not (home / "warehouse" / "exports" / "fct_flights").exists():
            build_year(home)
        results = {"benchmark": "feature_store", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "date": date.today().isoformat(), "retrieval": {}}
        for store_type in args.offline_store:
            repo = repo_for(store_type, Path(tmp))
            results["retrieval"][store_type] = retrieval(repo, args.repeats, args.last_day,
                                                            args.memory_limit_gib)
            if store_type == "duckdb":
                results["online_materialization"] = materialization(repo)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
