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
    # Three workers on two cores, each starting processes of its own: a native thread pool (OpenMP,
    # BLAS, PyTorch's) of more than one thread spins waiting for a core (docs/benchmarks.md,
    # "Threads"). The platform bounds its fits itself (TrainingDevice.cpu_threads); this bounds the
    # rest (inference, NumPy) in every process the tests start.
    for pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(pool, "1")
    if not _xdist_worker(config):
        from mlplatform.warehouse.project import prepare_manifest

        prepare_manifest()


# Under xdist each module runs whole on one worker, in this order: the longest first, as measured
# (docs/tests.md; `make test` keeps the order with --no-loadscope-reorder). The benchmarks' smoke
# run is a subprocess of a few minutes: it starts when the tests are collected and runs beside
# them, and its module, which waits for it, goes last.
LONGEST_FIRST = {name: rank for rank, name in enumerate((
    "test_production", "test_faults", "test_e2e", "test_model", "test_serving", "test_transform",
    "test_storage_faults", "test_customer_spend", "test_warehouse_writers", "test_shadow", "test_automation",
    "test_fast_lane", "test_streaming", "test_features"))}
LAST = "test_benchmarks"


@pytest.hookimpl(trylast=True)  # after `-k` and `-m` deselected theirs: a smoke run only when its tests run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    def order(item) -> int:
        name = item.module.__name__
        return len(LONGEST_FIRST) + 1 if name == LAST else LONGEST_FIRST.get(name, len(LONGEST_FIRST))

    items.sort(key=order)  # the same order on every worker, as xdist requires
    if any("smoke_run" in item.fixturenames for item in items):
        from test_benchmarks import start_smoke_run

        # Every xdist worker collects the same tests; the run's id names one folder, and the worker
        # that creates it starts the run.
        run_id = config.workerinput["testrunuid"] if _xdist_worker(config) else None
        start_smoke_run(run_id)


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
