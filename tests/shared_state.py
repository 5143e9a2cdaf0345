"""State that several test modules start from, built once per test session and copied per module.

Under pytest-xdist each module runs on one of several worker processes: the first worker that asks
builds the state under a lock in the session's temporary folder, the others wait for it, and every
module works on a copy of its own. A copy is relocated: the warehouse's views and the JSON files
that name the built directory name the copy, and Feast's registry is applied afresh for it (its
sources and online store are paths of the state directory they were applied for).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlplatform.state import StatePaths

# Five weeks: the tour's days, enough for a model with a fortnight each of validation and holdout.
FLIGHTS_THROUGH = "2013-02-04"
_TEXT_FILES = {".json", ".jsonl", ".yaml", ".yml"}


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by the session's worker processes (each worker's base folder is one below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _build_flights(home: Path) -> None:
    """Flights landed, loaded and built by dbt through FLIGHTS_THROUGH, the feature definitions
    applied and a training set retrieved through Feast."""
    import dagster as dg

    from helpers import build_through, home_env, materialize_asset

    paths = StatePaths.resolve(home).ensure()
    with home_env(home), dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
        build_through(instance, paths, FLIGHTS_THROUGH)
        for key in ("feature_definitions", "training_set"):
            assert materialize_asset(instance, paths, key).success, key


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build) -> Path:
    folder = _session_folder(tmp_path_factory) / f"shared-{name}"
    folder.mkdir(exist_ok=True)
    home, done = folder / "home", folder / "built"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)  # a build cut short by a dead worker
            build(home)
            done.touch()
    return home


def relocate(built: Path, copy: Path) -> StatePaths:
    """`built` copied to `copy`, naming `copy` wherever it named `built`."""
    import duckdb

    shutil.copytree(built, copy, symlinks=True)
    old, new = str(built), str(copy)
    for path in copy.rglob("*"):
        if path.suffix in _TEXT_FILES and path.is_file():
            text = path.read_text()
            if old in text:
                path.write_text(text.replace(old, new))
    paths = StatePaths.resolve(copy)
    warehouse = paths.warehouse / "warehouse.duckdb"
    if warehouse.exists():
        with duckdb.connect(str(warehouse)) as db:
            views = db.execute("select sql from duckdb_views() where not internal and sql like ?",
                               [f"%{old}%"]).fetchall()
            for (sql,) in views:
                db.execute(sql.replace(old, new).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    # Feast's registry and online store belong to the directory they were applied for: anew here.
    for stale in ("registry.db", "online_store.db", "applied_definitions.json"):
        (paths.feast / stale).unlink(missing_ok=True)
    return paths


@contextmanager
def flights_copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[StatePaths]:
    """A module's own copy of the shared flights state (FLIGHTS_THROUGH), its feature definitions
    applied, with MLPLATFORM_HOME pointed at it meanwhile."""
    from helpers import home_env
    from mlplatform.features.repo import apply_definitions

    built = _built_once(tmp_path_factory, "flights", _build_flights)
    copied = relocate(built, tmp_path_factory.mktemp(name) / "home")
    with home_env(copied.home):
        apply_definitions(copied)
        yield copied
