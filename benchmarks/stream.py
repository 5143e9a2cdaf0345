"""Benchmark: the departure stream on the embedded default (SQLite topic, SQLite online store).

  - latency: a day's departures published on a clock that runs the day in `--day-seconds`, with the
    consumer following (`mlplatform consume --follow`'s loop, in a thread); for every event, the
    seconds from its publication until a Feast online read after its push returned (the read is
    done, so the value was readable then). Goal: p99 <= 2 s.
  - throughput: a whole day's events already waiting, consumed in one poll (parse, state, push to
    Feast, commit), in events per second of consumer time. Goal: ~1,000 departures in under 1 s.

    python benchmarks/stream.py [--repeats 3] [--day-seconds 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

DAYS = [date(2013, 6, 3) + timedelta(days=i) for i in range(7)]  # a busy summer week


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _setup(home: Path):
    os.environ["MLPLATFORM_HOME"] = str(home)
    from mlplatform.features.repo import apply_definitions, open_store
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(home).ensure()
    apply_definitions(paths)
    return paths, open_store(paths)


def latency(home: Path, day: date, day_seconds: float) -> list[float]:
    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.defs.flights.stream_state import ORIGIN_VIEW
    from mlplatform.streaming.topic import SqliteTopic

    paths, store = _setup(home)
    topic_file = paths.stream / f"latency-{day}.db"
    consumer = Consumer(SqliteTopic(topic_file), store, name=f"latency-{day}")
    seen: list[float] = []
    done = threading.Event()

    def read_back(report) -> None:
        store.get_online_features(features=[f"{ORIGIN_VIEW}:mean_delay_last_10"],
                                  entity_rows=[{"origin_code": o} for o in ("EWR", "JFK", "LGA")])
        readable = time.time()
        seen.extend(readable - published for published in report.published_at)

    thread = threading.Thread(target=consumer.follow, kwargs={"stop": done.is_set, "on_poll": read_back})
    thread.start()
    replayer = Replayer(LandingZone(paths.landing, paths.quarantine), topic=SqliteTopic(topic_file))
    replayer.publish_day(day, day_seconds)
    deadline = time.time() + 30
    while consumer.lag() and time.time() < deadline:
        time.sleep(0.1)
    done.set()
    thread.join()
    return seen


def throughput(home: Path, days: list[date]) -> list[dict]:
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.defs.flights.stream_events import day_events
    from mlplatform.streaming.topic import SqliteTopic

    paths, store = _setup(home)
    topic = SqliteTopic(paths.stream / "throughput.db")
    consumer = Consumer(topic, store, name="throughput", batch_size=100_000)
    runs = []
    for day in days:
        topic.publish([e.to_json() for e in day_events(day)])
        started = time.perf_counter()
        report = consumer.poll()
        seconds = time.perf_counter() - started
        runs.append({"day": day.isoformat(), "events": report.events, "seconds": round(seconds, 3),
                     "events_per_s": round(report.events / seconds)})
    return runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="days streamed for latency")
    parser.add_argument("--day-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        days = throughput(home, DAYS)
        latencies = [latency(home, day, args.day_seconds) for day in DAYS[:args.repeats]]
    per_day = [{"events": len(v), "p50_s": round(_percentile(v, 0.5), 3), "p99_s": round(_percentile(v, 0.99), 3),
                "max_s": round(max(v), 3)} for v in latencies]
    result = {
        "benchmark": "stream", "machine": machine(), "date": date.today().isoformat(),
        "latency": {"day_seconds": args.day_seconds, "days": per_day,
                    "median_p50_s": statistics.median(d["p50_s"] for d in per_day),
                    "median_p99_s": statistics.median(d["p99_s"] for d in per_day)},
        "throughput": {"days": days,
                       "median_events_per_s": statistics.median(d["events_per_s"] for d in days),
                       "median_seconds_per_day": statistics.median(d["seconds"] for d in days)},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
