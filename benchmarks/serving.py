"""Benchmark: the prediction API against Feast's own feature server, over loopback.

Both servers run as their own processes on this machine: `mlplatform serve` (features from the
online store + the champion network) answering `POST /predict` for one flight, and `feast serve`
answering `POST /get-online-features` for the same flight's lookup of the same feature service.
Latency: sequential requests on one kept-alive connection (p50, p99). Throughput: several
connections at once for a fixed time. The client is raw HTTP/1.1 in one event loop, the cheapest
load a Python process can make; on a 2-core machine it still shares the cores with the server, so
the figures are a floor.

    python benchmarks/run.py serving   (on the history home: a champion and online features)
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from common import BIN, ROOT, Context, figure, platform_env

FLIGHT = {"carrier": "UA", "flight_number": 1545, "origin": "EWR", "dest": "IAH",
          "scheduled_departure": "2013-12-30T17:15:00", "tail_number": "N14228"}
FEAST_LOOKUP = {"feature_service": "flight_delay_v1", "full_feature_names": True,
                "entities": {"origin_code": ["EWR"], "route": ["EWR-IAH"], "carrier_code": ["UA"],
                             "tail_number": ["N14228"], "scheduled_departure_utc": [1388441700]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, probe: dict, path: str, seconds: float = 120, token: str | None = None) -> None:
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + path, json=probe, timeout=5, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer {path}")


def _request_bytes(url: str, body: dict, token: str | None = None) -> tuple[tuple[str, int], bytes]:
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    return (parts.hostname, parts.port), head + payload


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    """One request on a kept-alive connection; raises unless the answer is 200."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    await reader.readexactly(length)


# The load comes from raw HTTP/1.1 over kept-alive sockets in one event loop: a Python HTTP client
# costs as much CPU per request as the server does, and on two cores it would measure itself.
async def _latency(url: str, body: dict, n: int, token: str | None = None) -> list[float]:
    address, request = _request_bytes(url, body, token)
    reader, writer = await asyncio.open_connection(*address)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await _exchange(reader, writer, request)
        times.append(time.perf_counter() - started)
    writer.close()
    return times


async def _throughput(url: str, body: dict, clients: int, seconds: float, token: str | None = None) -> int:
    address, request = _request_bytes(url, body, token)
    deadline = time.monotonic() + seconds

    async def client() -> int:
        reader, writer = await asyncio.open_connection(*address)
        done = 0
        while time.monotonic() < deadline:
            await _exchange(reader, writer, request)
            done += 1
        writer.close()
        return done

    return sum(await asyncio.gather(*(client() for _ in range(clients))))


async def _open_loop(url: str, body: dict, rate: float, seconds: float, token: str | None = None) -> list[float]:
    """Requests that arrive on a fixed schedule, `rate` a second, whatever the answers' pace (as
    independent callers would): each one's latency counts from its scheduled arrival, so a server
    that falls behind shows it (no coordinated omission). Connections are reused when idle."""
    address, request = _request_bytes(url, body, token)
    idle: list = []
    times: list[float] = []

    async def one(scheduled: float) -> None:
        if idle:
            reader, writer = idle.pop()
            try:
                await _exchange(reader, writer, request)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closes a connection idle past its keep-alive (uvicorn: 5 s) before
                # reading from it: send again on a new one, as an HTTP client does.
                writer.close()
                reader, writer = await asyncio.open_connection(*address)
                await _exchange(reader, writer, request)
        else:
            reader, writer = await asyncio.open_connection(*address)
            await _exchange(reader, writer, request)
        times.append(time.perf_counter() - scheduled)
        idle.append((reader, writer))

    start = time.perf_counter() + 0.05
    tasks = []
    for n in range(int(rate * seconds)):
        scheduled = start + n / rate
        if (wait := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return times


def open_loop(url: str, body: dict, rate: float, seconds: float, token: str | None = None) -> dict:
    """p50 and p99 of a steady `rate` of arrivals for `seconds` (any error raises)."""
    times = sorted(asyncio.run(_open_loop(url, body, rate, seconds, token)))
    n = len(times)
    return {"rate_rps": rate, "seconds": seconds, "requests": n, "p50_ms": round(times[n // 2] * 1000, 3),
            "p99_ms": round(times[int(n * 0.99) - 1] * 1000, 3)}


def latency(url: str, body: dict, n: int, token: str | None = None) -> dict:
    times = sorted(asyncio.run(_latency(url, body, n, token)))
    return {"requests": n, "p50_ms": round(times[n // 2] * 1000, 3),
            "p99_ms": round(times[int(n * 0.99) - 1] * 1000, 3)}


def throughput(url: str, body: dict, clients: int, seconds: float, token: str | None = None) -> float:
    return round(asyncio.run(_throughput(url, body, clients, seconds, token)) / seconds, 1)


def measure(name: str, command: list[str], url: str, path: str, body: dict, home: Path, requests: int,
            clients: int, seconds: float) -> dict:
    server = subprocess.Popen(command, env=platform_env(home), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, body, path)
        latency(url + path, body, 50)  # warm up
        result = {"server": name, **latency(url + path, body, requests),
                  "throughput_rps": throughput(url + path, body, clients, seconds)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    return result


# The load figures: many clients at once, one server process against one per core (`--workers 2`).
LOAD_CLIENTS = 32


def one_run(home: Path, requests: int, clients: int, seconds: float) -> dict:
    port_a, port_b, port_c, port_d, port_e = (free_port() for _ in range(5))
    serve = [str(BIN / "mlplatform"), "--home", str(home), "serve"]
    return {
        "load_1_worker": measure(f"mlplatform serve, {LOAD_CLIENTS} clients", [*serve, "--port", str(port_d), "--quiet"],
                                 f"http://127.0.0.1:{port_d}", "/predict", FLIGHT, home, requests, LOAD_CLIENTS,
                                 seconds),
        "load_2_workers": measure(f"mlplatform serve --workers 2, {LOAD_CLIENTS} clients",
                                  [*serve, "--port", str(port_e), "--quiet", "--workers", "2"],
                                  f"http://127.0.0.1:{port_e}", "/predict", FLIGHT, home, requests, LOAD_CLIENTS,
                                  seconds),
        "predict": measure("mlplatform serve: POST /predict", [*serve, "--port", str(port_a)],
                           f"http://127.0.0.1:{port_a}", "/predict", FLIGHT, home, requests, clients, seconds),
        # The prediction log's cost: the same server writing no log.
        "predict_unlogged": measure("mlplatform serve --no-prediction-log: POST /predict",
                                    [*serve, "--port", str(port_c), "--no-prediction-log"],
                                    f"http://127.0.0.1:{port_c}", "/predict", FLIGHT, home, requests, clients, seconds),
        "feast": measure("feast serve: POST /get-online-features", [str(BIN / "feast"), "-c", str(ROOT / "feature_repo"),
                         "serve", "-p", str(port_b), "--no-access-log", "--max-requests", "0"],
                         f"http://127.0.0.1:{port_b}", "/get-online-features", FEAST_LOOKUP,
                         home, requests, clients, seconds)}


def bench(ctx: Context) -> dict:
    home = ctx.history_home()
    requests, seconds = (200, 1.0) if ctx.smoke else (2000, 10.0)
    runs = [one_run(home, requests, clients=4, seconds=seconds) for _ in range(ctx.repeats)]
    figures = []
    for key, label, targets in (("predict", "`mlplatform serve` `/predict`", True),
                                ("feast", "`feast serve` `/get-online-features` (lookup only)", False)):
        figures += [
            figure(f"{label} p50", [r[key]["p50_ms"] for r in runs], "ms"),
            figure(f"{label} p99", [r[key]["p99_ms"] for r in runs], "ms", target="< 5" if targets else "",
                   met=max(r[key]["p99_ms"] for r in runs) < 5 if targets else None),
            figure(f"{label} throughput", [r[key]["throughput_rps"] for r in runs], "req/s", digits=0,
                   target="> 1000" if targets else "",
                   met=min(r[key]["throughput_rps"] for r in runs) > 1000 if targets else None),
        ]
    figures += [figure(f"`/predict` without the prediction log {q}", [r["predict_unlogged"][f"{q}_ms"] for r in runs], "ms")
                for q in ("p50", "p99")]
    figures.append(figure("`/predict` without the prediction log throughput",
                          [r["predict_unlogged"]["throughput_rps"] for r in runs], "req/s", digits=0))
    for key, label in (("load_1_worker", "one process"), ("load_2_workers", "`--workers 2`")):
        figures.append(figure(f"`/predict` under {LOAD_CLIENTS} clients, {label}, throughput",
                              [r[key]["throughput_rps"] for r in runs], "req/s", digits=0,
                              target="> 1000" if key == "load_2_workers" else "",
                              met=min(r[key]["throughput_rps"] for r in runs) > 1000 if key == "load_2_workers"
                              else None))
    return {"title": "Serving: one flight over loopback, beside `feast serve`", "figures": figures, "runs": runs}


BENCHMARKS = {"serving": bench}
