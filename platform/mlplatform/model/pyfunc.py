"""The MLflow pyfunc of a use case's model (network or gradient boosting): `models:/<model>@champion`
loads it with its preprocessing, and `predict` takes training-set-shaped rows and returns delay probabilities."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from mlplatform.ml.bundle import load_bundle


class FlightDelayModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.trained = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.trained.score(model_input)
