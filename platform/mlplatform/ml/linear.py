"""The linear candidate family: a logistic regression (binary) or a ridge regression (regression) on
the other families' preprocessing (one-hot categories, standardized numerics with missing flags).

On a few weeks of data a linear model is often what generalizes: it is a candidate like the others,
its regularization chosen on the validation days (as the other families stop early there), then
refit on every day before the holdout. It is served as its coefficients (`LinearModel`): a dot
product and, for a binary task, a sigmoid, with no scikit-learn call on the request's path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplatform.features.service import LABEL
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.split import TimeSplit
from mlplatform.ml.task import BINARY, metrics, target

# Inverse regularization strengths (binary) and ridge penalties (regression) tried on the validation days.
STRENGTHS = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class LinearModel:
    """A fitted linear model over `Preprocessor` outputs: numeric weights, one weight per category
    of each categorical input, an intercept."""
    numeric: np.ndarray
    categories: tuple[np.ndarray, ...]
    intercept: float
    binary: bool

    def predict(self, cats: np.ndarray, nums: np.ndarray) -> np.ndarray:
        z = np.asarray(nums, dtype=np.float64) @ self.numeric + self.intercept
        for j, weights in enumerate(self.categories):
            z = z + weights[np.asarray(cats[:, j], dtype=np.int64)]
        return (1.0 / (1.0 + np.exp(-np.clip(z, -500, 500))) if self.binary else z).astype(np.float32)


@dataclass
class FittedLinear:
    pre: Preprocessor
    model: LinearModel
    strength: float
    validation_probability: np.ndarray
    fitted_rows: int


def fit_at_strength(pre: Preprocessor, cats: np.ndarray, nums: np.ndarray, label: np.ndarray, task: str,
                    strength: float) -> LinearModel:
    """One linear model at one regularization strength, on the rows `pre` encodes."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from mlplatform.ml.evaluate import one_hot

    x = one_hot(pre, cats, nums)
    if task == BINARY:
        estimator = LogisticRegression(C=strength, max_iter=500).fit(x, label)
        coef, intercept = estimator.coef_[0], float(estimator.intercept_[0])
    else:
        estimator = Ridge(alpha=1.0 / strength).fit(x, label)
        coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), float(estimator.intercept_)
    n = nums.shape[1]
    bounds = np.cumsum([n, *pre.cardinalities])
    categories = tuple(coef[a:b].astype(np.float64) for a, b in zip(bounds[:-1], bounds[1:]))
    return LinearModel(coef[:n].astype(np.float64), categories, intercept, task == BINARY)


def fit_linear(split: TimeSplit, categorical: list[str], numeric: list[str], task: str,
               with_refit: bool = True) -> FittedLinear:
    """Each strength fitted on the training days and scored on the validation days; the best one
    (ROC AUC, or RMSE for a regression), then (`with_refit`) fitted on every day before the holdout."""
    from mlplatform.ml.task import VALIDATION_METRICS, best

    pre = Preprocessor.fit(split.train, categorical, numeric)
    cats, nums = pre.transform(split.train)
    label = target(task, split.train[LABEL])
    v_cats, v_nums = pre.transform(split.validation)
    v_label = target(task, split.validation[LABEL])
    tried = {}
    for strength in STRENGTHS:
        model = fit_at_strength(pre, cats, nums, label, task, strength)
        predicted = model.predict(v_cats, v_nums)
        tried[strength] = (predicted, metrics(task, v_label, predicted))
    chosen = best(VALIDATION_METRICS[task][0], {s: m for s, (_, m) in tried.items()})
    probability = tried[chosen][0]
    if not with_refit:
        return FittedLinear(pre, fit_at_strength(pre, cats, nums, label, task, chosen), chosen, probability,
                            len(split.train))
    rows = split.fitting_rows(with_validation=True)
    pre = Preprocessor.fit(rows, categorical, numeric)
    model = fit_at_strength(pre, *pre.transform(rows), target(task, rows[LABEL]), task, chosen)
    return FittedLinear(pre, model, chosen, probability, len(rows))
