"""Shared fixtures: every test gets its own state directory and its own Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.ingest.lake import Lake
from mlplatform.ingest.landing import LandingZone
from mlplatform.state import HOME_ENV, StatePaths


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # The code location reads a prepared dbt manifest (it never parses dbt at import): prepare it
    # before test modules import the definitions. Under pytest-xdist (`make test` runs `-n`), the
    # controller does it once, before it starts the workers.
    # The suite tests the embedded default; test_production.py sets the production profile's
    # settings in its own processes.
    import os

    for setting in ("MLPLATFORM_PROFILE", "MLPLATFORM_POSTGRES_URL", "MLPLATFORM_REDIS_URL"):
        os.environ.pop(setting, None)
    if not _xdist_worker(config):
        from mlplatform.warehouse.project import prepare_manifest

        prepare_manifest()


SMOKE_RUN = pytest.StashKey[object]()
# The order each worker collects in (each module runs whole on one worker). pytest-xdist 3.8 hands
# the modules out by their number of tests, most first, whatever this order (docs/tests.md).
LONGEST_FIRST = {"test_benchmarks": 0, "test_production": 1, "test_faults": 2, "test_e2e": 3, "test_storage_faults": 4}


@pytest.hookimpl(trylast=True)  # after `-k` and `-m` deselected theirs: a smoke run only when its tests run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if _xdist_worker(config):
        items.sort(key=lambda item: LONGEST_FIRST.get(item.module.__name__, len(LONGEST_FIRST)))
        return
    # One process: the benchmarks' smoke run starts as soon as the tests are collected and runs
    # beside the others (most are one busy core), and its tests go last.
    smoke = [item for item in items if "smoke_run" in item.fixturenames]
    if smoke:
        from test_benchmarks import start_smoke_run

        items[:] = [item for item in items if item not in smoke] + smoke
        config.stash[SMOKE_RUN] = start_smoke_run()



@pytest.fixture(scope="module", autouse=True)
def _module_cpu(request: pytest.FixtureRequest) -> Iterator[None]:
    """With MLPLATFORM_TEST_CPU_LOG set, the CPU seconds each module costs (its worker's and its waited
    children's: servers it starts and stops, commands it runs) appended to that file as JSON lines.
    On two cores the suite's CPU, not its workers' count, bounds its time (docs/tests.md)."""
    import json
    import os
    import time

    log = os.environ.get("MLPLATFORM_TEST_CPU_LOG")
    if not log:
        yield
        return
    before, started, began_at = os.times(), time.monotonic(), time.time()
    yield
    after = os.times()
    own, children = (after.user + after.system) - (before.user + before.system), \
        (after.children_user + after.children_system) - (before.children_user + before.children_system)
    with open(log, "a") as out:
        out.write(json.dumps({"module": request.module.__name__, "own": round(own, 1), "children": round(children, 1),
                              "wall": round(time.monotonic() - started, 1), "began_at": round(began_at, 1),
                              "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}) + "\n")


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StatePaths:
    home = tmp_path / "mlplatform-home"
    monkeypatch.setenv(HOME_ENV, str(home))
    return StatePaths.resolve(home).ensure()


@pytest.fixture
def zone(paths: StatePaths) -> LandingZone:
    return LandingZone(paths.landing, paths.quarantine)


@pytest.fixture
def lake(paths: StatePaths) -> Lake:
    return Lake(paths.lake)


@pytest.fixture
def instance(paths: StatePaths) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
        yield instance
