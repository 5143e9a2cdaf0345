"""The trained model as files: preprocessing, network shape and weights, saved and loaded together,
so that whatever scores a flight applies exactly what training did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlplatform.ml.network import TabularNet
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.train import predict_proba


def save_bundle(folder: Path, pre: Preprocessor, model: TabularNet) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
    (folder / "network.json").write_text(json.dumps(model.config))
    torch.save(model.cpu().state_dict(), folder / "weights.pt")
    return folder


def load_bundle(folder: Path) -> tuple[Preprocessor, TabularNet]:
    pre = Preprocessor.from_dict(json.loads((folder / "preprocessor.json").read_text()))
    model = TabularNet.from_config(json.loads((folder / "network.json").read_text()))
    model.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    return pre, model.eval()


def score(pre: Preprocessor, model: TabularNet, frame: pd.DataFrame) -> np.ndarray:
    """Delay probabilities for flights given as training-set-shaped rows (missing columns are missing values)."""
    cats, nums = pre.transform(frame)
    return predict_proba(model, cats, nums)
