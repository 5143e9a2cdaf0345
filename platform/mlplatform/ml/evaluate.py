"""Scoring on the holdout: the challenger beside the baselines, on the same rows (binary here;
`regression_baselines` for a regression)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from scipy import sparse

from mlplatform.ml.boosting import arrays_to_inputs
from mlplatform.ml.preprocess import Preprocessor


def metrics(label: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    label = np.asarray(label).astype(int)
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    # Rows of one outcome have no ranking to judge: their AUCs are NaN (scikit-learn raises).
    both = len(np.unique(label)) == 2
    return {"roc_auc": float(roc_auc_score(label, p)) if both else float("nan"),
            "pr_auc": float(average_precision_score(label, p)) if both else float("nan"),
            "log_loss": float(log_loss(label, p, labels=[0, 1])), "brier": float(brier_score_loss(label, p)),
            "predicted_rate": float(p.mean()), "realized_rate": float(label.mean()), "rows": int(len(label))}


def calibration(label: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per bin of predicted probability: the mean prediction and the observed delay rate."""
    frame = pd.DataFrame({"p": probability, "y": np.asarray(label).astype(int)})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    grouped = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), rows=("y", "size"))
    return [{"bin": int(b), **{k: float(v) for k, v in row.items()}} for b, row in grouped.iterrows()]


def one_hot(pre: Preprocessor, cats: np.ndarray, nums: np.ndarray) -> sparse.csr_matrix:
    """The numeric inputs, then one column per category of each categorical input (float64, CSR).

    Built row by row in place: every row holds its numerics and one 1 per categorical input, so the
    matrix's arrays are known before it exists. Stacking a block per input went through coordinate
    triples of every stored value, several times the matrix's own size, and that was the peak of a
    model's evaluation on a year of data."""
    rows, n_numeric = nums.shape
    offsets = n_numeric + np.concatenate([[0], np.cumsum(pre.cardinalities)[:-1]]).astype(np.int64)
    width = n_numeric + cats.shape[1]
    indices = np.empty((rows, width), dtype=np.int32)
    indices[:, :n_numeric] = np.arange(n_numeric, dtype=np.int32)
    indices[:, n_numeric:] = cats + offsets
    data = np.empty((rows, width), dtype=np.float64)
    data[:, :n_numeric] = nums
    data[:, n_numeric:] = 1.0
    matrix = sparse.csr_matrix((data.reshape(-1), indices.reshape(-1), np.arange(0, rows * width + 1, width)),
                               shape=(rows, n_numeric + int(sum(pre.cardinalities))))
    matrix.eliminate_zeros()  # a numeric input at exactly zero is not stored, as in any sparse matrix
    return matrix


def baselines(pre: Preprocessor, train: tuple[np.ndarray, np.ndarray, np.ndarray],
              holdout: tuple[np.ndarray, np.ndarray], seed: int = 13,
              seconds: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Holdout probabilities of the base rate, a logistic regression (standardized numerics, one-hot
    categories) and HistGradientBoosting (native categories, the same numeric values), each fitted
    on every row given (the evaluation gives the rows the challenger learned from) with the same
    preprocessing as the network: the opponents the gate asks the challenger to beat. `seconds`,
    when given, receives what each one's fit and scoring took."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    cats, nums, label = train
    h_cats, h_nums = holdout
    with timed(seconds, "base_rate"):
        base_rate = np.full(len(h_cats), float(label.mean()))
    with timed(seconds, "logistic_regression"):
        logistic = LogisticRegression(max_iter=300, C=1.0).fit(one_hot(pre, cats, nums), label)
        logistic_probability = logistic.predict_proba(one_hot(pre, h_cats, h_nums))[:, 1]
    with timed(seconds, "hist_gradient_boosting"):
        boosting = HistGradientBoostingClassifier(categorical_features=list(range(cats.shape[1])), random_state=seed,
                                                  max_iter=300, learning_rate=0.1, early_stopping=True)
        boosting.fit(arrays_to_inputs(cats, nums), label)
        boosting_probability = boosting.predict_proba(arrays_to_inputs(h_cats, h_nums))[:, 1]
    return {"base_rate": base_rate, "logistic_regression": logistic_probability,
            "hist_gradient_boosting": boosting_probability}


@contextmanager
def timed(seconds: dict[str, float] | None, name: str) -> Iterator[None]:
    """Adds the block's seconds to `seconds[name]` (nothing when `seconds` is None)."""
    started = time.perf_counter()
    yield
    if seconds is not None:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started


# The regression baseline that predicts the training mean: what any model must beat to be worth
# serving (the base rate's counterpart).
TRAINING_MEAN = "training_mean"


def regression_baselines(pre: Preprocessor, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                         holdout: tuple[np.ndarray, np.ndarray], seed: int = 13,
                         seconds: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Holdout predictions of the training mean, a ridge regression (standardized numerics, one-hot
    categories) and HistGradientBoosting (native categories), each fitted on every row given, with
    the challenger's preprocessing: a regression challenger's opponents. A use case adds its own
    naive baseline (the last period's value, say) as a feature the linear model reads. `seconds`, as
    for `baselines`."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    cats, nums, label = train
    label = np.asarray(label, dtype=np.float64)
    h_cats, h_nums = holdout
    with timed(seconds, TRAINING_MEAN):
        mean = np.full(len(h_cats), float(label.mean()))
    with timed(seconds, "ridge_regression"):
        ridge = Ridge(alpha=1.0).fit(one_hot(pre, cats, nums), label)
        ridge_prediction = ridge.predict(one_hot(pre, h_cats, h_nums))
    with timed(seconds, "hist_gradient_boosting"):
        boosting = HistGradientBoostingRegressor(categorical_features=list(range(cats.shape[1])), random_state=seed,
                                                 max_iter=300, learning_rate=0.1, early_stopping=True)
        boosting.fit(arrays_to_inputs(cats, nums), label)
        boosting_prediction = boosting.predict(arrays_to_inputs(h_cats, h_nums))
    return {TRAINING_MEAN: mean, "ridge_regression": ridge_prediction, "hist_gradient_boosting": boosting_prediction}
