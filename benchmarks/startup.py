"""Benchmark: start-up. `dagster definitions validate` of the code location, and the time from
`dagster dev` starting to its GraphQL API listing the platform's sensors (the UI is usable).

    python benchmarks/run.py startup

Each run is a fresh process against an empty temporary state directory, so nothing is cached but
the dbt manifest (`mlplatform prepare` writes it, as `make run` does).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from common import BIN, ROOT, Context, figure, platform_env

SENSORS = ('{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: '
           '"mlplatform"}) { ... on Sensors { results { name } } } }')


def validate_seconds(home: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "mlplatform.definitions"],
                   env=platform_env(home), cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def dev_seconds(home: Path, limit: float = 180) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                              env=platform_env(home), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        # Not timed. dagster dev may take long to stop under load (its daemon and code server stop
        # one by one), or restart a child a signal reached first: the whole group is killed after 30 s.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def bench(ctx: Context) -> dict:
    validate, dev = [], []
    for _ in range(ctx.repeats):
        for measure, into in ((validate_seconds, validate), (dev_seconds, dev)):
            with tempfile.TemporaryDirectory(dir=ctx.work) as home:
                subprocess.run([str(BIN / "mlplatform"), "prepare"], env=platform_env(Path(home)), cwd=ROOT,
                               check=True, capture_output=True)  # as `make run` does, not timed
                into.append(measure(Path(home)))
    return {"title": "Start-up", "figures": [
        figure("`dagster definitions validate`", validate, "s"),
        figure("`dagster dev` start to the code location served", dev, "s")]}


BENCHMARKS = {"startup": bench}
