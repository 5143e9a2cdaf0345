"""Import the libraries steps need before they need them: in a run, while an earlier step waits on a
subprocess; in a Celery worker, once, before it forks its pool (automation/celery_app.py).

A `daily_refresh` run spends its first seconds waiting on dbt (a subprocess), then its online,
drift and scoring steps import Feast, MLflow and PyTorch, seconds of work, in a process the
daemon started for this run alone. Importing them once dbt's process has started overlaps the two
(benchmarks/one_new_day.py; the figures are in docs/benchmarks.md).

The imports run in the caller's thread, never a second one: while one thread imports a package,
another thread that touches it can be handed the half-initialized module. It happened here with a
background thread: Dagster's event storage, on the run's thread, failed with "partially initialized
module 'sqlalchemy.orm.exc'" while the thread imported MLflow's SQLAlchemy store.
"""

import importlib
from collections.abc import Iterable

# What the steps of a run import beyond Dagster: the code location's (dbt's integration, DuckDB) and
# the later steps' (Feast, MLflow, PyTorch, scikit-learn's metrics).
LATER_STEP_LIBRARIES = ("feast", "mlflow.pyfunc", "mlflow.store.tracking.sqlalchemy_store", "torch",
                        "sklearn.metrics")
STEP_LIBRARIES = ("dagster_dbt", "duckdb", *LATER_STEP_LIBRARIES)


def preload(modules: Iterable[str]) -> None:
    """Import `modules` now; one that fails is left for the step that needs it to import and report."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            pass
