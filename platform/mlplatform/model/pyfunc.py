"""The MLflow pyfunc of a use case's model (any family): `models:/<model>@champion` loads it with its
preprocessing, and `predict` takes training-set-shaped rows and returns the use case's prediction
output (a probability for a binary task, a value for a regression)."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from mlplatform.ml.bundle import load_bundle


class UseCaseModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.trained = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.trained.score(model_input)


def __getattr__(name: str):
    # MLflow pickles the class by its module and name: versions a use case registered under an
    # earlier name of this class (its hooks' `EARLIER_MODEL_CLASS_NAMES`) load through this one.
    if not name.startswith("_"):
        from mlplatform.usecases import enabled

        if any(name in getattr(use_case.module, "EARLIER_MODEL_CLASS_NAMES", ()) for use_case in enabled()):
            return UseCaseModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
