"""Preprocessing that travels with the model: vocabularies and standardization fitted on the
training split only, applied identically at training, evaluation and serving time."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.ml.columns import with_derived, with_derived_record

UNKNOWN = 0  # index of unseen or missing categories in every vocabulary


@dataclass
class Preprocessor:
    categorical: list[str]
    numeric: list[str]
    vocab: dict[str, list[str]]
    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def fit(cls, frame: pd.DataFrame, categorical: list[str], numeric: list[str],
            max_categories: int = 250, min_count: int = 5) -> "Preprocessor":
        frame = with_derived(frame)
        vocab = {}
        for column in categorical:
            counts = frame[column].dropna().astype(str).value_counts()
            kept = counts[counts >= min_count].index[:max_categories]
            vocab[column] = sorted(kept)
        mean, std = {}, {}
        for column in numeric:
            values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            mean[column] = float(values.mean()) if values.notna().any() else 0.0
            spread = float(values.std()) if values.notna().sum() > 1 else 0.0
            std[column] = spread if spread > 1e-12 else 1.0
        return cls(list(categorical), list(numeric), vocab, mean, std)

    @property
    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    @property
    def n_numeric_inputs(self) -> int:
        return 2 * len(self.numeric)  # standardized values and their missing flags

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Category indices (int64, [rows, categorical]) and numeric inputs (float32, [rows, 2 x numeric]):
        standardized values with missing ones at the mean (0), then a 1/0 missing flag per column."""
        frame = with_derived(frame)
        cats = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, column in enumerate(self.categorical):
            if column not in frame:
                continue
            codes = pd.Categorical(frame[column].astype("string"), categories=self.vocab[column]).codes
            cats[:, j] = codes.astype(np.int64) + 1  # -1 (unseen or missing) becomes UNKNOWN
        nums = np.zeros((len(frame), self.n_numeric_inputs), dtype=np.float32)
        for j, column in enumerate(self.numeric):
            if column in frame:
                values = pd.to_numeric(frame[column], errors="coerce").astype("float64").to_numpy()
            else:
                values = np.full(len(frame), np.nan)
            missing = ~np.isfinite(values)
            nums[:, j] = np.where(missing, 0.0, (values - self.mean[column]) / self.std[column])
            nums[:, len(self.numeric) + j] = missing
        return cats, nums

    @cached_property
    def _codes(self) -> dict[str, dict[str, int]]:
        return {c: {value: i + 1 for i, value in enumerate(self.vocab[c])} for c in self.categorical}

    def transform_records(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """`transform` for rows given as dicts, without pandas: the serving path, where a frame's
        construction would cost more than the network. Held equal to `transform` by the tests."""
        cats = np.zeros((len(records), len(self.categorical)), dtype=np.int64)
        nums = np.zeros((len(records), self.n_numeric_inputs), dtype=np.float32)
        half = len(self.numeric)
        for i, record in enumerate(records):
            record = with_derived_record(record)
            for j, column in enumerate(self.categorical):
                value = record.get(column)
                if value is not None and value == value:  # neither None nor NaN
                    cats[i, j] = self._codes[column].get(str(value), UNKNOWN)
            for j, column in enumerate(self.numeric):
                value = _as_float(record.get(column))
                if math.isfinite(value):
                    nums[i, j] = (value - self.mean[column]) / self.std[column]
                else:
                    nums[i, half + j] = 1.0
        return cats, nums

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessor":
        return cls(**data)


def _as_float(value: Any) -> float:
    """A number, or NaN for what `pd.to_numeric(errors="coerce")` would make missing."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
