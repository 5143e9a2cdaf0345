"""Benchmark: start-up. `dagster definitions validate` of the code location, and the time from
`dagster dev` starting to its GraphQL API listing the platform's sensors (the UI is usable).

    python benchmarks/startup.py [--repeats 5] [--out FILE]

Each run is a fresh process against an empty temporary state directory, so nothing is cached but
the dbt manifest (`mlplatform prepare` writes it once, as `make run` does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SENSORS = ('{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: '
           '"mlplatform"}) { ... on Sensors { results { name } } } }')


def _env(home: Path) -> dict:
    return {**os.environ, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "MLPLATFORM_SENSORS": "stopped", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def validate_seconds(home: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "mlplatform.definitions"],
                   env=_env(home), cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def dev_seconds(home: Path, limit: float = 180) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                              env=_env(home), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        while time.perf_counter() - started < limit:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": SENSORS}, timeout=5).json()
                if answer["data"]["sensorsOrError"].get("results"):
                    return time.perf_counter() - started
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("dagster dev did not serve the code location in time")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 2), "min_s": round(min(values), 2),
            "max_s": round(max(values), 2), "runs": [round(v, 2) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    subprocess.run([str(BIN / "mlplatform"), "prepare"], env=_env(Path(tempfile.mkdtemp())), cwd=ROOT, check=True,
                   capture_output=True)  # the dbt manifest, once
    validate, dev = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as home:
            validate.append(validate_seconds(Path(home)))
        with tempfile.TemporaryDirectory() as home:
            subprocess.run([str(BIN / "mlplatform"), "prepare"], env=_env(Path(home)), cwd=ROOT, check=True,
                           capture_output=True)
            dev.append(dev_seconds(Path(home)))
    result = {"benchmark": "startup", "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "definitions_validate": summary(validate), "dagster_dev_until_served": summary(dev)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
