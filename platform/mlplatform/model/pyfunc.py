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


# MLflow pickles the class by its module and name: versions registered before the class had its
# use-case-neutral name load through this one.
FlightDelayModel = UseCaseModel
