"""Benchmark: the prediction API against Feast's own feature server, over loopback.

Both servers run as their own processes on this machine: `mlplatform serve` (features from the
online store + the champion network) answering `POST /predict` for one flight, and `feast serve`
answering `POST /get-online-features` for the same flight's lookup of the same feature service.
Latency: sequential requests on one kept-alive connection (p50, p99). Throughput: several
connections at once for a fixed time. The client is raw HTTP/1.1 in one event loop, the cheapest
load a Python process can make; on a 2-core machine it still shares the cores with the server, so
the figures are a floor.

    python benchmarks/serving.py --home DIR   (a state directory with a champion and online features)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLIGHT = {"carrier": "UA", "flight_number": 1545, "origin": "EWR", "dest": "IAH",
          "scheduled_departure": "2013-12-30T17:15:00", "tail_number": "N14228"}
FEAST_LOOKUP = {"feature_service": "flight_delay_v1", "full_feature_names": True,
                "entities": {"origin_code": ["EWR"], "route": ["EWR-IAH"], "carrier_code": ["UA"],
                             "tail_number": ["N14228"], "scheduled_departure_utc": [1388441700]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, probe: dict, path: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + path, json=probe, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer {path}")


def _request_bytes(url: str, body: dict) -> tuple[tuple[str, int], bytes]:
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
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
async def _latency(url: str, body: dict, n: int) -> list[float]:
    address, request = _request_bytes(url, body)
    reader, writer = await asyncio.open_connection(*address)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await _exchange(reader, writer, request)
        times.append(time.perf_counter() - started)
    writer.close()
    return times


async def _throughput(url: str, body: dict, clients: int, seconds: float) -> int:
    address, request = _request_bytes(url, body)
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


def latency(url: str, body: dict, n: int) -> dict:
    times = sorted(asyncio.run(_latency(url, body, n)))
    return {"requests": n, "p50_ms": round(times[n // 2] * 1000, 3),
            "p99_ms": round(times[int(n * 0.99) - 1] * 1000, 3)}


def throughput(url: str, body: dict, clients: int, seconds: float) -> float:
    return round(asyncio.run(_throughput(url, body, clients, seconds)) / seconds, 1)


def measure(name: str, command: list[str], url: str, path: str, body: dict, args) -> dict:
    env = {**os.environ, "MLPLATFORM_HOME": str(args.home)}
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, body, path)
        latency(url + path, body, 50)  # warm up
        result = {"server": name, **latency(url + path, body, args.requests),
                  "throughput_rps": throughput(url + path, body, args.clients, args.seconds)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    port_a, port_b = free_port(), free_port()
    results = {"benchmark": "serving", "date": date.today().isoformat(),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": [
        measure("mlplatform serve: POST /predict", [str(BIN / "mlplatform"), "--home", str(args.home), "serve",
                "--port", str(port_a)], f"http://127.0.0.1:{port_a}", "/predict", FLIGHT, args),
        measure("feast serve: POST /get-online-features", [str(BIN / "feast"), "-c", str(ROOT / "feature_repo"),
                "serve", "-p", str(port_b), "--no-access-log", "--max-requests", "0"], f"http://127.0.0.1:{port_b}",
                "/get-online-features", FEAST_LOOKUP, args)]}
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
