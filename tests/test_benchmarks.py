"""The benchmarks keep working: each runs at a tiny size through `make bench`'s runner.

Nothing here checks a figure against its target (benchmarks are not tests); it checks that every
benchmark ran the platform for real and reported figures, and that the docs table was written.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import BEGIN, END, ORDER  # noqa: E402


@dataclass
class SmokeRun:
    process: subprocess.Popen
    folder: Path
    log: Path

    @property
    def results(self) -> Path:
        return self.folder / "results"

    @property
    def docs(self) -> Path:
        return self.folder / "benchmarks.md"


# Every benchmark but `production`: its commands, on real servers, are what tests/test_production.py
# runs, and its smoke run would start a second pair of servers and workers beside them; and but
# `tour`: sensors under `dagster dev` to a champion are what tests/test_e2e.py runs.
SMOKED = [name for name in ORDER if name not in ("production", "tour")]


def start_smoke_run() -> SmokeRun:
    """Start `run.py --smoke` in its own folder (results, docs copy, work directories)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
    docs = folder / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nHow they are run.\n\n## A section of prose\n\nKept as it is.\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TMPDIR": str(folder)}
    log = folder / "run.log"
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", *SMOKED,
                                "--results", str(folder / "results"), "--docs", str(docs)],
                               env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return SmokeRun(process, folder, log)


@pytest.fixture(scope="module")
def smoke_run(request) -> Iterator[tuple[Path, Path]]:
    from conftest import SMOKE_RUN

    run = request.config.stash.get(SMOKE_RUN, None) or start_smoke_run()
    try:
        code = run.process.wait(timeout=1800)  # a guard against a hang, not a goal
    except subprocess.TimeoutExpired:
        run.process.kill()
        raise
    assert code == 0, run.log.read_text()[-5000:]
    yield run.results, run.docs
    shutil.rmtree(run.folder, ignore_errors=True)


def test_every_benchmark_reports_its_figures(smoke_run):
    results, _ = smoke_run
    for name in SMOKED:
        result = json.loads((results / f"{name}.json").read_text())
        assert result["smoke"] is True and result["machine"] and result["figures"], name
        for f in result["figures"]:
            assert f["median"] > 0 and f["min"] <= f["median"] <= f["max"], (name, f)


def test_cold_run_trains_and_compares_with_the_bare_script(smoke_run):
    results, _ = smoke_run
    cold = json.loads((results / "cold_end_to_end.json").read_text())
    [run] = cold["runs"]
    assert any(line.startswith("retrain ") for line in run["runs"]), run["runs"]
    assert run["ratio"] == pytest.approx(run["pipeline_s"] / run["bare_s"], abs=0.01)
    scale = json.loads((results / "scale.json").read_text())
    assert [r["scale"] for r in scale["runs"]] == [1] and scale["runs"][0]["pipeline_s"] == run["pipeline_s"]


def test_the_docs_table_is_written_between_its_markers(smoke_run):
    _, docs = smoke_run
    text = docs.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    table = text[text.index(BEGIN):text.index(END)]
    for title in ("Cold end to end", "One new day", "Scale", "Serving", "Training throughput", "Start-up"):
        assert title in table
    assert "## A section of prose\n\nKept as it is." in text


def test_stream_benchmark_measures_latency_and_throughput() -> None:
    """`benchmarks/stream.py` at a tiny size: a day streamed in 2 s, a week consumed."""
    import stream

    result = stream.main(["--repeats", "1", "--day-seconds", "2"])
    [day] = result["latency"]["days"]
    assert day["events"] > 500 and 0 < day["p50_s"] <= day["p99_s"] <= day["max_s"]
    assert len(result["throughput"]["days"]) == 7 and result["throughput"]["median_events_per_s"] > 0


def test_drift_calibration_warns_on_a_new_flight_mix_not_on_new_conditions() -> None:
    """Eight weeks of flights: the weather warms every week (a condition, judged apart) and in the
    last week a third of the flights move to a new route (the flight mix drifts): only that week warns."""
    import numpy as np
    import pandas as pd

    from drift_calibration import summarize, weekly_psi

    rng = np.random.default_rng(0)
    departures = pd.date_range("2013-01-07 12:00", periods=8 * 7 * 72, freq="20min", tz="UTC")
    week = np.arange(len(departures)) // (7 * 72)
    routes = rng.choice(["JFK-LAX", "EWR-ORD", "LGA-ATL"], size=len(departures))
    routes[(week == 7) & (rng.random(len(departures)) < 0.35)] = "JFK-SFO"
    frame = pd.DataFrame({
        "flight_id": np.arange(len(departures)).astype(str), "scheduled_departure_utc": departures,
        "carrier_code": "AA", "origin_code": [r[:3] for r in routes], "route": routes,
        "origin_weather__temperature_f": 20 + 5 * week + rng.normal(0, 2, len(departures)),
        "plane__plane_seats": rng.integers(100, 200, len(departures)), "is_delayed": rng.random(len(departures)) < 0.2})
    weekly = weekly_psi(frame)
    summary = summarize(weekly, threshold=0.25)
    assert summary["inputs"]["origin_weather__temperature_f"]["judged"] == "condition"
    assert summary["inputs"]["origin_weather__temperature_f"]["weeks_over"] == len(weekly)
    [(last_week, over)] = summary["weeks_warned"].items()
    assert last_week == weekly.index[-1] and set(over) >= {"route", "dest_code"} and "plane__plane_seats" not in over
