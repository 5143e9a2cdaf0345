"""The trained model as files: preprocessing and the fitted estimator of its family, saved and loaded
together, so that whatever scores a row applies exactly what training did.

Families: `network` (the PyTorch TabularNet: its shape and weights), `gradient_boosting`
(scikit-learn's HistGradientBoosting, pickled), `linear` (a logistic or ridge regression's
coefficients, `ml/linear.py`) and `blend` (the network and the boosting, fitted on the same rows with
the same preprocessing; the mean of their probabilities). `auto` is not a family but a choice: every
one is fitted and the validation days pick (`ml/candidates.py`). A bundle without a family file is a
network: the versions registered before there were several families.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.ml.preprocess import Preprocessor

NETWORK, GRADIENT_BOOSTING, LINEAR, BLEND = "network", "gradient_boosting", "linear", "blend"
AUTO = "auto"  # every family fitted, the best on the validation days registered
FEW_ROWS = 256  # up to this many rows, boosting is scored by the compiled trees
FAMILIES = (NETWORK, GRADIENT_BOOSTING, LINEAR)  # what can be fitted; a blend is the first two


@dataclass(frozen=True)
class TrainedModel:
    family: str
    pre: Preprocessor
    estimator: Any  # a TabularNet, a HistGradientBoostingClassifier, or (blend) a tuple of both

    def probabilities(self, cats: np.ndarray, nums: np.ndarray) -> np.ndarray:
        """Predictions from preprocessed inputs (float32, one per row): probabilities of a binary
        model, values of a regression one (the blend is the mean of its parts either way)."""
        if self.family == BLEND:
            network, boosting = self.estimator
            return (TrainedModel(NETWORK, self.pre, network).probabilities(cats, nums)
                    + TrainedModel(GRADIENT_BOOSTING, self.pre, boosting).probabilities(cats, nums)) / 2
        if self.family == LINEAR:
            return self.estimator.predict(cats, nums)
        if self.family == GRADIENT_BOOSTING:
            from mlplatform.ml.boosting import arrays_to_inputs

            if not len(cats):
                return np.zeros(0, dtype=np.float32)
            inputs = arrays_to_inputs(cats, nums)
            if len(inputs) <= FEW_ROWS:  # a request: scikit-learn's per-call overhead would dominate
                return _compiled(self.estimator).probabilities(inputs).astype(np.float32)
            if hasattr(self.estimator, "predict_proba"):
                return self.estimator.predict_proba(inputs)[:, 1].astype(np.float32)
            return self.estimator.predict(inputs).astype(np.float32)  # a regressor
        from mlplatform.ml.train import predict

        return predict(self.estimator, cats, nums)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows given as training-set-shaped dicts (missing columns are missing values)."""
        return self.probabilities(*self.pre.transform(frame))

    def score_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The same for rows given as dicts (the serving path: no pandas)."""
        return self.probabilities(*self.pre.transform_records(records))


@lru_cache(maxsize=8)
def _compiled(estimator):
    from mlplatform.ml.boosting import CompiledTrees

    return CompiledTrees(estimator)


def blend(network: TrainedModel, boosting: TrainedModel) -> TrainedModel:
    """Both families as one model: they must share their preprocessing (fitted on the same rows)."""
    if network.pre != boosting.pre:
        raise ValueError("a blend needs both models fitted on the same rows with the same preprocessing")
    return TrainedModel(BLEND, network.pre, (network.estimator, boosting.estimator))


def _parts(trained: TrainedModel) -> dict[str, Any]:
    if trained.family == BLEND:
        return dict(zip((NETWORK, GRADIENT_BOOSTING), trained.estimator))
    return {trained.family: trained.estimator}


def save_bundle(folder: Path, trained: TrainedModel) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor.json").write_text(json.dumps(trained.pre.to_dict()))
    (folder / "family.json").write_text(json.dumps({"family": trained.family}))
    for family, estimator in _parts(trained).items():
        if family == GRADIENT_BOOSTING:
            (folder / "boosting.pkl").write_bytes(pickle.dumps(estimator))
            continue
        if family == LINEAR:
            (folder / "linear.pkl").write_bytes(pickle.dumps(estimator))
            continue
        import torch

        (folder / "network.json").write_text(json.dumps(estimator.config))
        torch.save(estimator.cpu().state_dict(), folder / "weights.pt")
    return folder


def load_bundle(folder: Path) -> TrainedModel:
    pre = Preprocessor.from_dict(json.loads((folder / "preprocessor.json").read_text()))
    family_file = folder / "family.json"
    family = json.loads(family_file.read_text())["family"] if family_file.exists() else NETWORK
    parts = []
    if family in (NETWORK, BLEND):
        import torch

        from mlplatform.ml.network import TabularNet

        model = TabularNet.from_config(json.loads((folder / "network.json").read_text()))
        model.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
        parts.append(model.eval())
    if family in (GRADIENT_BOOSTING, BLEND):
        # The registry's own artifact, written by the training asset: trusted as any model file is.
        parts.append(pickle.loads((folder / "boosting.pkl").read_bytes()))
    if family == LINEAR:
        parts.append(pickle.loads((folder / "linear.pkl").read_bytes()))
    if not parts:
        raise ValueError(f"{folder / 'family.json'}: unknown model family {family!r}")
    return TrainedModel(family, pre, parts[0] if len(parts) == 1 else tuple(parts))
