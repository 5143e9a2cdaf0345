"""Benchmark: the README's tour, as a newcomer runs it. `mlplatform dev` (what `make run` starts:
the UI, the daemon with every sensor on, the stream's consumer) on a fresh state directory, then
`mlplatform replay --days 35 --every 2`, and the time from the replay's start to the first
champion, with the defaults a newcomer has (no setting changed). Beside it, the headless way:
`mlplatform replay --days 35` and `mlplatform pipeline` on another fresh state directory.

    python benchmarks/run.py tour

Not in `make test`'s smoke run: tests/test_e2e.py runs the same processes (sensors under
`dagster dev` to a champion) on fewer days.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from common import BIN, ROOT, Context, figure, mlplatform
from mlplatform.usecases import active

DAYS, EVERY = "35", "2"
MODEL = active().model.lines[0].registered_model  # the day-ahead model, the tour's first champion
LIMIT_S = 1200.0
RUNS = '{ runsOrError { ... on Runs { results { jobName status startTime endTime tags { key value } } } } }'


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _champion(home: Path) -> int | None:
    """The version the registry's `champion` alias names (one SQLite query: the poll must not cost
    the machine what it measures)."""
    database = home / "mlflow" / "mlflow.db"
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute("select version from registered_model_aliases where alias = 'champion' and name = ?",
                              (MODEL,)).fetchone()
    except sqlite3.Error:  # created but without its tables yet
        return None
    return int(row[0]) if row else None


def _env(home: Path) -> dict[str, str]:
    # The newcomer's environment: only the state directory, every setting at its default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")}
    return {**env, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}


def tour_seconds(home: Path) -> dict:
    """From `replay --every` starting to the first champion, under `mlplatform dev`."""
    port = _port()
    log = open(home.parent / "dev.log", "w")
    dev = subprocess.Popen([str(BIN / "mlplatform"), "dev", "--port", str(port)], env=_env(home), cwd=ROOT,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # the UI answers: what the newcomer waits for before the replay
            try:
                if httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": RUNS}, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if dev.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlplatform dev did not come up:\n" + (home.parent / "dev.log").read_text()[-3000:])
            time.sleep(1)
        started = time.perf_counter()
        replay = subprocess.Popen([str(BIN / "mlplatform"), "replay", "--days", DAYS, "--every", EVERY],
                                  env=_env(home), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        replayed = None
        while (version := _champion(home)) is None:
            if replayed is None and replay.poll() is not None:
                replayed = time.perf_counter() - started
            if time.perf_counter() - started > LIMIT_S:
                raise RuntimeError(f"no champion {LIMIT_S:.0f} s after the replay started")
            time.sleep(2)
        champion_s = time.perf_counter() - started
        replay.wait()
        runs = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": RUNS}, timeout=30).json()
        results = runs["data"]["runsOrError"]["results"]
        by_job: dict[str, list[float]] = {}
        for run in results:
            if run["endTime"] and run["startTime"]:
                by_job.setdefault(run["jobName"], []).append(run["endTime"] - run["startTime"])
        return {"champion_s": champion_s, "replay_s": replayed or champion_s, "version": version,
                "runs": {job: {"count": len(times), "seconds": round(sum(times), 1)} for job, times in by_job.items()}}
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:  # what outlived it: the daemon's run processes
            os.killpg(dev.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        dev.wait(timeout=30)
        # The daemon starts its code server in a session of its own: found by the state directory.
        for process in psutil.process_iter(["cmdline"]):
            if str(home) in " ".join(process.info["cmdline"] or []):
                process.kill()


def headless_seconds(home: Path) -> float:
    replay = mlplatform("replay", "--days", DAYS, home=home)
    pipeline = mlplatform("pipeline", home=home)
    if "champion: version" not in pipeline["output"]:
        raise RuntimeError(f"no champion after the headless pipeline:\n{pipeline['output'][-2000:]}")
    return replay["seconds"] + pipeline["seconds"]


def bench(ctx: Context) -> dict:
    tours, replays, headless, details = [], [], [], []
    for _ in range(ctx.repeats):
        with tempfile.TemporaryDirectory(dir=ctx.work, ignore_cleanup_errors=True) as folder:
            tour = tour_seconds(Path(folder) / "home")
            print(f"   tour: {tour}", flush=True)
            tours.append(tour["champion_s"])
            replays.append(tour["replay_s"])
            details.append(tour)
        with tempfile.TemporaryDirectory(dir=ctx.work, ignore_cleanup_errors=True) as folder:
            headless.append(headless_seconds(Path(folder) / "home"))
    return {"title": "The tour", "details": details, "figures": [
        figure(f"`make run`, `replay --days {DAYS} --every {EVERY}`: replay start to the first champion", tours, "s",
               "≤ 300 s", max(tours) <= 300),
        figure("… of which the replay itself", replays, "s"),
        figure(f"headless: `replay --days {DAYS}` then `pipeline` to the first champion", headless, "s",
               "≤ 120 s", max(headless) <= 120)]}


BENCHMARKS = {"tour": bench}
