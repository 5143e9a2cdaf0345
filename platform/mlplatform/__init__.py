"""An ML data platform on Dagster.

Stages, each an asset group in one code location:
landing files -> raw -> transformed (dbt) -> features (Feast) -> model (PyTorch + MLflow) -> deployed.
"""

__version__ = "0.1.0"
