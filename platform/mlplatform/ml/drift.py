"""Population stability index (PSI): how far a feature's distribution moved from the training set's.

PSI = sum over bins of (current - expected) * ln(current / expected), with the bins fitted on the
training set: deciles for a numeric feature, the categories for a categorical one; missing values
are a bin of their own, so a feature that goes missing drifts too. Rules of thumb: under 0.1 stable,
0.1 to 0.25 moderate, over 0.25 large.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOOR = 1e-4  # an empty bin counts as this share, so the logarithm stays finite
OTHER = "__other__"


def _shares(counts: pd.Series, bins: list) -> np.ndarray:
    shares = counts.reindex(bins, fill_value=0).to_numpy(dtype=np.float64)
    total = shares.sum()
    return np.maximum(shares / total if total else shares, FLOOR)


def psi(expected: pd.Series, current: pd.Series, *, categorical: bool, quantiles: int = 10) -> float:
    if categorical:
        known = set(expected.dropna().astype(str).unique())

        def binned(values: pd.Series) -> pd.Series:
            text = values.astype("string")
            return text.where(text.isin(known) | text.isna(), OTHER).fillna("__missing__")
    else:
        numbers = pd.to_numeric(expected, errors="coerce").astype("float64")
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, quantiles + 1)[1:-1])) \
            if numbers.notna().any() else np.array([])

        def binned(values: pd.Series) -> pd.Series:
            x = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
            labels = np.searchsorted(edges, x, side="right").astype(object)
            labels[np.isnan(x)] = "__missing__"
            return pd.Series(labels)
    e_counts, c_counts = binned(expected).value_counts(), binned(current).value_counts()
    bins = sorted(set(e_counts.index) | set(c_counts.index), key=str)
    e, c = _shares(e_counts, bins), _shares(c_counts, bins)
    return float(np.sum((c - e) * np.log(c / e)))


def psi_by_feature(expected: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                   categorical: list[str]) -> dict[str, float]:
    """PSI of every feature present in both frames, largest first."""
    found = {c: psi(expected[c], current[c], categorical=False) for c in numeric if c in expected and c in current}
    found |= {c: psi(expected[c], current[c], categorical=True) for c in categorical if c in expected and c in current}
    return dict(sorted(found.items(), key=lambda item: -item[1]))
