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
#   materialized.
_warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta")
_warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")
