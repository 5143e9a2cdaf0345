"""Benchmark: the production profile beside the embedded default, on the same landed days.

Each profile gets a new state directory: a month landed, `mlplatform pipeline` from nothing to a first
champion (cold), then one more day landed and `mlplatform pipeline` again (one new day). Production
runs on PostgreSQL 16 and Redis 6.2 started from their wheels on this machine (tests/servers.py) with
two Celery workers (`mlplatform worker`) executing the steps. Then `POST /predict` latency, features
from SQLite or from Redis, and the cost of one event written to Dagster's event log, SQLite or
PostgreSQL (the per-event cost that long runs pay hundreds of times).

    python benchmarks/run.py production
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, ROOT, Context, figure, measured, platform_env
from serving import FLIGHT, free_port, latency, wait_until_up

sys.path.insert(0, str(ROOT / "tests"))
from servers import start_postgres, start_redis  # noqa: E402

MONTH = "2013-01-31"
EVENTS = 300


def _env(home: Path, settings: dict[str, str], production: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in platform_env(home, settings).items() if k not in
           ("MLPLATFORM_PROFILE", "MLPLATFORM_POSTGRES_URL", "MLPLATFORM_REDIS_URL")}
    return {**env, **(production or {})}


def _workers(env: dict[str, str], home: Path) -> list[subprocess.Popen]:
    workers = [subprocess.Popen([str(BIN / "mlplatform"), "worker", "--name", f"bench{n}", "--loglevel", "INFO"],
                                env=env, cwd=ROOT, stdout=open(home.parent / f"worker{n}.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True) for n in (1, 2)]
    deadline = time.monotonic() + 60
    while not all("ready" in (home.parent / f"worker{n}.log").read_text() for n in (1, 2)):
        if time.monotonic() > deadline:
            raise RuntimeError("the Celery workers did not start")
        time.sleep(0.5)
    return workers


def _event_cost_ms(env: dict[str, str]) -> float:
    """Median milliseconds to write one event to the run's event log, in a process of its own."""
    script = ("import statistics, time, dagster as dg\n"
              "from dagster._core.test_utils import create_run_for_test\n"
              "with dg.DagsterInstance.get() as instance:\n"
              "    run = create_run_for_test(instance, job_name='bench')\n"
              "    times = []\n"
              f"    for n in range({EVENTS}):\n"
              "        started = time.perf_counter()\n"
              "        instance.report_engine_event(f'event {n}', run)\n"
              "        times.append(time.perf_counter() - started)\n"
              "    print(statistics.median(times) * 1000)\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _serving(env: dict[str, str], requests: int) -> dict:
    port = free_port()
    server = subprocess.Popen([str(BIN / "mlplatform"), "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        flight = {**FLIGHT, "scheduled_departure": "2013-01-30T17:15:00"}
        token = env.get("MLPLATFORM_API_TOKEN")  # the production profile requires one
        wait_until_up(url, flight, "/predict", token=token)
        latency(url + "/predict", flight, 50, token)  # warm up
        return latency(url + "/predict", flight, requests, token)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def one_profile(ctx: Context, production: dict[str, str] | None) -> dict:
    through = "2013-01-07" if ctx.smoke else MONTH
    home = Path(tempfile.mkdtemp(dir=ctx.work)) / "home"
    env = _env(home, ctx.spec, production)
    workers = []
    try:
        measured([str(BIN / "mlplatform"), "prepare"], env)
        if production:
            workers = _workers(env, home)
        measured([str(BIN / "mlplatform"), "replay", "--through", through], env)
        cold = measured([str(BIN / "mlplatform"), "pipeline"], env)
        if "champion: version" not in cold["output"]:
            raise RuntimeError(f"no champion:\n{cold['output'][-2000:]}")
        measured([str(BIN / "mlplatform"), "replay", "--days", "1"], env)
        new_day = measured([str(BIN / "mlplatform"), "pipeline", "--no-retrain"], env)
        return {"cold_s": cold["seconds"], "new_day_s": new_day["seconds"],
                "event_ms": round(_event_cost_ms(env), 3),
                **_serving(env, 200 if ctx.smoke else 2000)}
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def bench(ctx: Context) -> dict:
    runs = {"embedded": [], "production": []}
    for n in range(ctx.repeats):
        servers_dir = ctx.work / f"servers-{n}"
        pg, redis = start_postgres(servers_dir), start_redis(servers_dir)
        try:
            production = {"MLPLATFORM_PROFILE": "production", "MLPLATFORM_API_TOKEN": "benchmark-" + os.urandom(12).hex(),
                          "MLPLATFORM_POSTGRES_URL": pg.url,
                          "MLPLATFORM_REDIS_URL": redis.url}
            runs["embedded"].append(one_profile(ctx, None))
            runs["production"].append(one_profile(ctx, production))
        finally:
            redis.stop()
            if not pg.external:
                pg.stop("immediate")
    size = "a week" if ctx.smoke else "January"
    figures = []
    for key, label, unit in (("cold_s", f"cold end to end ({size}, to a first champion)", "s"),
                             ("new_day_s", "one new day (`pipeline --no-retrain`)", "s"),
                             ("event_ms", "one event written to Dagster's event log", "ms"),
                             ("p50_ms", "`/predict` p50", "ms"), ("p99_ms", "`/predict` p99", "ms")):
        for profile, store in (("embedded", "SQLite/DuckDB"), ("production", "PostgreSQL/Redis, 2 Celery workers")):
            figures.append(figure(f"{label}: {profile} ({store})", [r[key] for r in runs[profile]], unit, digits=3))
    return {"title": "Production profile beside the embedded default", "figures": figures, "runs": runs}


BENCHMARKS = {"production": bench}
