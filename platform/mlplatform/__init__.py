"""An ML data platform on Dagster.

Stages, each an asset group in one code location:
landing files -> raw -> transformed (dbt) -> features (Feast) -> model (PyTorch + MLflow) -> deployed.
"""

__version__ = "0.1.0"

import warnings as _warnings

# Warnings filtered on purpose, by message, wherever the platform is imported (the CLI, `dagster dev`'s
# code server, run workers), each because it says nothing a user can act on:
# - every asset that processes a range of days in one run declares `BackfillPolicy.single_run()`, a
#   parameter Dagster still calls beta;
# - Feast's DuckDB offline store calls ibis's `fetch_arrow_table`, deprecated by ibis, once per view
#   materialized;
# - dagster-mlflow's `MlFlow` resource (the platform's tracking, tracking.py) and its run hook are
#   beta, and dagster-dbt reads its own op tags through a deprecated accessor at every dbt run;
# - MLflow's hints on a model signature's integer columns (the platform's inputs are never missing:
#   unknown values have their own category) and on a dataset source's two readings (the same class);
# - Feast's note that on-demand feature views are experimental (the platform's calendar view is one,
#   features/service.py, and its offline retrieval is measured in docs/benchmarks.md).
# pyproject.toml's `filterwarnings` lists the same for pytest, which resets filters per test.
for _message in (r"Parameter `backfill_policy` of function `asset` is currently in beta",
                 r"fetch_arrow_table\(\) is deprecated",
                 r"Class `MlFlow` is currently in beta",
                 r"Function `_create_mlflow_run_hook` is currently in beta",
                 r"AssetExecutionContext.op is deprecated",
                 r"Hint: Inferred schema contains integer column",
                 r"The specified dataset source can be interpreted in multiple ways",
                 r"On demand feature view is an experimental feature"):
    _warnings.filterwarnings("ignore", message=_message)


def _quiet_feast_registry_note() -> None:
    """Feast logs, at every store open, that `serve_features_while_materializing` "typically has no
    effect" with a file registry. The setting is kept (a view being materialized is flipped to
    MATERIALIZING in the registry the API reads; with the flag it keeps its last values) and the
    production profile's SQL registry is what Feast has in mind: the note is dropped, once per
    process, by message."""
    import logging

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "serve_features_while_materializing" not in record.getMessage()

    logging.getLogger("feast.repo_config").addFilter(_Drop())


_quiet_feast_registry_note()

# Before anything imports Feast: its argument checks are instrumented at their first call, not at
# import (deferred_typechecks.py says why).
from mlplatform.deferred_typechecks import install as _defer_typechecks  # noqa: E402

_defer_typechecks()

# And PyTorch, which Feast imports at its own import for methods the platform never calls, is
# imported when Feast first asks for it (lazy_torch.py says why).
from mlplatform.lazy_torch import install as _defer_feasts_torch  # noqa: E402

_defer_feasts_torch()


def _one_feast_metrics_folder() -> None:
    """Feast's metrics module makes a temporary folder for prometheus_client's multiprocess files at
    its import and removes it at exit: every process that ends otherwise (`kill -9`, a forked
    worker's `os._exit`) leaves one in the temporary directory, and the daemon, the tests and the
    Celery pools end many that way. The platform never turns Feast's metrics on, so the folder stays
    empty: one per user serves every process. Set before Feast is imported; one already set is kept."""
    import os
    import tempfile

    if "PROMETHEUS_MULTIPROCESS_DIR" in os.environ or "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return
    folder = os.path.join(tempfile.gettempdir(), f"mlplatform-feast-metrics-{os.getuid()}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:  # no writable temporary directory: Feast fails or copes as it would anyway
        return
    os.environ["PROMETHEUS_MULTIPROCESS_DIR"] = folder
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


_one_feast_metrics_folder()


def _arrow_on_the_system_allocator() -> None:
    """Arrow's default memory pool (mimalloc in the Linux wheels) keeps the pages of every Parquet
    file read or written in a heap of its own, where NumPy, pandas and PyTorch, which use the C
    library's allocator, cannot reuse them: in a process that reads a training set, trains and then
    evaluates, each read added to the peak instead of reusing what the last step freed. One
    allocator for all of them (docs/benchmarks.md, "Cold end to end"). Set before pyarrow is
    imported; a pool already chosen is kept."""
    import os

    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


_arrow_on_the_system_allocator()
