"""Population stability index (PSI): how far a feature's distribution moved from the training set's.

PSI = sum over bins of (current - expected) * ln(current / expected), with the bins fitted on the
training set: deciles for a numeric feature, the categories for a categorical one; missing values
are a bin of their own, so a feature that goes missing drifts too. Rules of thumb: under 0.1 stable,
0.1 to 0.25 moderate, over 0.25 large.

The bins and the training set's counts in them (a `Profile`) are fitted once per training set and
kept beside it as JSON, so a day's drift reads the day's rows only, however large the training
set grew, instead of binning it all again each day.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

FLOOR = 1e-4  # an empty bin counts as this share, so the logarithm stays finite
OTHER = "__other__"
MISSING = "__missing__"
QUANTILES = 10
PROFILE_FILE = "drift_profile.json"
PROFILE_FORMAT = 1  # raise when the binning changes, so profiles kept on disk are fitted again


@dataclass(frozen=True)
class Binning:
    """One feature's bins, fitted on the training set, and the training set's count in each."""

    categorical: bool
    edges: list[float]  # numeric: the inner quantile edges
    known: list[str]  # categorical: the training set's categories
    counts: dict[str, int]

    def count(self, values: pd.Series) -> dict[str, int]:
        """How many values fall in each bin."""
        if self.categorical:
            text = values.astype("string")
            binned = text.where(text.isin(set(self.known)) | text.isna(), OTHER).fillna(MISSING)
            return {str(k): int(v) for k, v in binned.value_counts().items()}
        x = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        missing = np.isnan(x)
        bins = np.bincount(np.searchsorted(np.asarray(self.edges, dtype="float64"), x[~missing], side="right"))
        counts = {str(i): int(n) for i, n in enumerate(bins) if n}
        return counts | ({MISSING: int(missing.sum())} if missing.any() else {})


def fit(expected: pd.Series, *, categorical: bool, quantiles: int = QUANTILES) -> Binning:
    if categorical:
        known = sorted(str(v) for v in expected.dropna().astype(str).unique())
        bins = Binning(True, [], known, {})
    else:
        numbers = pd.to_numeric(expected, errors="coerce").astype("float64")
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, quantiles + 1)[1:-1])) \
            if numbers.notna().any() else np.array([])
        bins = Binning(False, [float(e) for e in edges], [], {})
    return replace(bins, counts=bins.count(expected))


def psi_against(binning: Binning, current: pd.Series) -> float:
    current_counts = binning.count(current)
    bins = sorted(set(binning.counts) | set(current_counts))
    e, c = _shares(binning.counts, bins), _shares(current_counts, bins)
    return float(np.sum((c - e) * np.log(c / e)))


def psi(expected: pd.Series, current: pd.Series, *, categorical: bool, quantiles: int = QUANTILES) -> float:
    return psi_against(fit(expected, categorical=categorical, quantiles=quantiles), current)


def _shares(counts: dict[str, int], bins: list[str]) -> np.ndarray:
    shares = np.array([counts.get(b, 0) for b in bins], dtype=np.float64)
    total = shares.sum()
    return np.maximum(shares / total if total else shares, FLOOR)


Profile = dict[str, Binning]


def fit_profile(expected: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Profile:
    """The bins of every listed feature present in the training set."""
    return {c: fit(expected[c], categorical=c in categorical)
            for c in [*numeric, *categorical] if c in expected}


def psi_by_feature(profile: Profile, current: pd.DataFrame) -> dict[str, float]:
    """PSI of every profiled feature present in the current frame, largest first."""
    found = {c: psi_against(binning, current[c]) for c, binning in profile.items() if c in current}
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def save_profile(path: Path, profile: Profile) -> None:
    from mlplatform.ingest.files import write_bytes_atomically

    document = {"format": PROFILE_FORMAT, "features": {c: asdict(b) for c, b in profile.items()}}
    write_bytes_atomically(path, json.dumps(document).encode())


def load_profile(path: Path, features: list[str]) -> Profile | None:
    """The profile kept at `path` if it is readable, current, and covers exactly `features`;
    otherwise None (the caller fits it again: a profile is a cache, never the only copy)."""
    try:
        document = json.loads(path.read_text())
        if document.get("format") != PROFILE_FORMAT or set(document["features"]) != set(features):
            return None
        return {c: Binning(**b) for c, b in document["features"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def training_set_profile(path: Path, frame: pd.DataFrame | None = None) -> Profile:
    """The profile of the training set at `path`, kept beside it in PROFILE_FILE; fitted (on
    `frame` when the caller holds the set already) and kept when missing or out of date.

    It covers the model's numeric and categorical inputs but the calendar features, which move
    with time itself (a new month is a new `month`): that is not a population drift."""
    import pyarrow.parquet as pq

    from mlplatform.features.service import CALENDAR_VIEW
    from mlplatform.ml.columns import CATEGORICAL, numeric_inputs, with_derived

    columns = with_derived(pq.read_schema(path).empty_table().to_pandas())
    numeric = [c for c in numeric_inputs(columns) if not c.startswith(f"{CALENDAR_VIEW}__")]
    categorical = [c for c in CATEGORICAL if c in columns]
    kept = path.with_name(PROFILE_FILE)
    profile = load_profile(kept, numeric + categorical)
    if profile is None:
        profile = fit_profile(with_derived(pd.read_parquet(path) if frame is None else frame), numeric, categorical)
        save_profile(kept, profile)
    return profile
