"""The gradient-boosting candidate family: scikit-learn's HistGradientBoosting on the network's own
preprocessing (category indices as native categories, standardized numerics with missing flags),
stopped early on the later-in-time validation days and refit, exactly as the network is.

Why the stopping matters: HistGradientBoosting's own early stopping holds out a random tenth of the
shuffled training rows, which look like the rows it learns from; the days after them do not. On the
year, stopping on the days before the holdout, then refitting on every day, scores clearly better
on the holdout than the random tenth (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplatform.features.service import LABEL
from mlplatform.ml.columns import CATEGORICAL
from mlplatform.ml.preprocess import Preprocessor
from mlplatform.ml.split import TimeSplit
from mlplatform.ml.task import BINARY, target


@dataclass(frozen=True)
class BoostingConfig:
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    # Large leaves: a leaf of a few rows describes one moment's conditions, which never return.
    min_samples_leaf: int = 200
    max_iterations: int = 1000
    patience: int = 20  # iterations without a lower validation loss before stopping
    seed: int = 13
    task: str = "binary"  # or "regression": squared error (ml/task.py)


def inputs(pre: Preprocessor, frame) -> np.ndarray:
    """The matrix HistGradientBoosting reads: category indices first, then the numeric inputs."""
    cats, nums = pre.transform(frame)
    return arrays_to_inputs(cats, nums)


def arrays_to_inputs(cats: np.ndarray, nums: np.ndarray) -> np.ndarray:
    """In float32: HistGradientBoosting, and serving's walk of its trees, convert their input to
    float64 themselves (scikit-learn encoding the categorical columns on the way), so a float64
    matrix of ours would be one more copy held through a fit, the model stage's largest. The values
    (small integers, float32 numerics) are exact either way, and so are the fit and the scores."""
    return np.concatenate([cats.astype(np.float32), nums.astype(np.float32, copy=False)], axis=1)


def _estimator(config: BoostingConfig, n_categorical: int, iterations: int, stop_early: bool):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    kind = HistGradientBoostingClassifier if config.task == BINARY else HistGradientBoostingRegressor
    return kind(
        learning_rate=config.learning_rate, max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf, max_iter=iterations, random_state=config.seed,
        categorical_features=list(range(n_categorical)), early_stopping=stop_early, scoring="loss",
        n_iter_no_change=config.patience)


@dataclass
class FittedBoosting:
    pre: Preprocessor
    model: object  # HistGradientBoostingClassifier or (regression) HistGradientBoostingRegressor
    iterations: int  # the count the validation days chose
    validation_loss: list[float]  # per iteration, on the validation days
    validation_probability: np.ndarray  # the early-stopped model on the validation days
    fitted_rows: int


def fit_boosting(split: TimeSplit, numeric: list[str], config: BoostingConfig = BoostingConfig(),
                 with_refit: bool = True) -> FittedBoosting:
    """Boost on the training days, watching the log loss on the validation days; keep the iteration
    count with the lowest, then (`with_refit`) fit that many on every day before the holdout."""
    categorical = list(CATEGORICAL)
    pre = Preprocessor.fit(split.train, categorical, numeric)
    validation = inputs(pre, split.validation)
    label = target(config.task, split.validation[LABEL])
    watched = _estimator(config, len(categorical), config.max_iterations, stop_early=True)
    watched.fit(inputs(pre, split.train), target(config.task, split.train[LABEL]), X_val=validation,
                y_val=label)
    # validation_score_ is the negative loss before the first iteration and after each one.
    losses = [-float(s) for s in watched.validation_score_]
    iterations = max(1, int(np.argmin(losses)))
    # The watched model ran `patience` iterations past the best: its staged prediction at the best
    # one is the early-stopped model's, without fitting it again.
    staged = (watched.staged_predict_proba(validation) if config.task == BINARY
              else watched.staged_predict(validation))
    probability = next(p for i, p in enumerate(staged, 1) if i == iterations)
    probability = probability[:, 1] if config.task == BINARY else probability
    if not with_refit:
        stopped = _estimator(config, len(categorical), iterations, stop_early=False)
        stopped.fit(inputs(pre, split.train), target(config.task, split.train[LABEL]))
        return FittedBoosting(pre, stopped, iterations, losses[1:], probability, len(split.train))
    rows = split.fitting_rows(with_validation=True)
    pre = Preprocessor.fit(rows, categorical, numeric)
    model = _estimator(config, len(categorical), iterations, stop_early=False)
    model.fit(inputs(pre, rows), target(config.task, rows[LABEL]))
    return FittedBoosting(pre, model, iterations, losses[1:], probability, len(rows))


class CompiledTrees:
    """A fitted HistGradientBoostingClassifier's trees as flat NumPy arrays, walked for all trees at
    once: what serving uses for a few rows. scikit-learn's own predict pays milliseconds for one row
    (input checks, thread start-up), many times the rest of a `/predict`; this walk gives the same
    probabilities in a fraction of a millisecond. It follows scikit-learn's rules for
    raw (unbinned) inputs: a missing value goes where the split sent missing values, a category goes
    left when in the split's bitset, right when known to the model, and an unknown or negative one
    goes where missing values go.

    It reads scikit-learn's fitted internals (`_predictors`, `_bin_mapper`, `_baseline_prediction`),
    which a scikit-learn upgrade may change: `tests/test_model.py` compares it with `predict_proba`."""

    def __init__(self, estimator) -> None:
        from sklearn.base import is_classifier

        self.logistic = is_classifier(estimator)  # a regressor's raw sum is its prediction
        # scikit-learn (1.4 on) encodes categorical columns itself before its trees see them: each
        # column's known values, sorted, become 0, 1, ...; an unknown value becomes missing; the
        # categorical columns go first. The trees' categories are those codes, so the walk encodes too.
        preprocessor = getattr(estimator, "_preprocessor", None)
        self.categorical_columns = self.category_values = None
        if preprocessor is not None:
            mask = np.asarray(estimator.is_categorical_, dtype=bool)
            self.categorical_columns, self.numeric_columns = np.flatnonzero(mask), np.flatnonzero(~mask)
            self.category_values = [np.asarray(c, dtype=np.float64)
                                    for c in preprocessor.named_transformers_["encoder"].categories_]
        trees = [predictors[0] for predictors in estimator._predictors]
        sizes = np.array([len(t.nodes) for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        bitset_rows = np.array([len(t.raw_left_cat_bitsets) for t in trees])
        bitset_offsets = np.concatenate([[0], np.cumsum(bitset_rows)[:-1]])
        nodes = np.concatenate([t.nodes for t in trees])
        shift = np.repeat(offsets, sizes)
        self.roots = offsets.astype(np.int64)
        self.value = nodes["value"].astype(np.float64)
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.left = nodes["left"].astype(np.int64) + shift
        self.right = nodes["right"].astype(np.int64) + shift
        self.leaf = nodes["is_leaf"].astype(bool)
        self.categorical = nodes["is_categorical"].astype(bool)
        # A node's bitset row among every tree's; a numeric node has none (row 0, never read as its
        # split), which keeps the lookup in bounds when its tree has no bitsets of its own.
        self.bitset = np.where(self.categorical, nodes["bitset_idx"].astype(np.int64)
                               + np.repeat(bitset_offsets, sizes), 0)
        self.left_bitsets = (np.concatenate([t.raw_left_cat_bitsets for t in trees])
                             if bitset_rows.sum() else np.zeros((1, 8), dtype=np.uint32))
        known, feature_map = estimator._bin_mapper.make_known_categories_bitsets()
        # A model with no categorical input has no bitsets: one empty row keeps the lookups in bounds.
        self.known_bitsets = known if len(known) else np.zeros((1, 8), dtype=np.uint32)
        self.feature_map = feature_map.astype(np.int64)
        self.baseline = float(np.ravel(estimator._baseline_prediction)[0])
        self.depth = max(int(t.get_max_depth()) for t in trees) if trees else 0

    @staticmethod
    def _in(bitsets: np.ndarray, rows: np.ndarray, category: np.ndarray) -> np.ndarray:
        words = bitsets[rows, category >> 5]
        return ((words >> (category & 31).astype(np.uint32)) & 1).astype(bool)

    def _encoded(self, X: np.ndarray) -> np.ndarray:
        """X as scikit-learn's trees read it (its own encoding of the categorical columns)."""
        if self.categorical_columns is None:
            return X
        columns = []
        for values, known in zip(X[:, self.categorical_columns].T, self.category_values):
            position = np.searchsorted(known, values)
            found = (position < len(known)) & (known[np.minimum(position, len(known) - 1)] == values)
            columns.append(np.where(found, position, np.nan))
        return np.column_stack([*columns, X[:, self.numeric_columns]])

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """The model's output per row: a probability for a classifier, the value for a regressor."""
        X = self._encoded(np.asarray(X, dtype=np.float64))
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        row = np.arange(len(X))[:, None]
        for _ in range(self.depth + 1):  # the break ends it once every row is at a leaf
            leaf = self.leaf[node]
            if leaf.all():
                break
            feature = self.feature[node]
            x = X[row, feature]
            missing = np.isnan(x)
            categorical = self.categorical[node]
            category = np.where(categorical & ~missing & (x >= 0), x, 0).astype(np.int64) & 255
            in_left = self._in(self.left_bitsets, self.bitset[node], category)
            known = self._in(self.known_bitsets, self.feature_map[feature], category)
            as_missing = missing | (categorical & ((x < 0) | (~in_left & ~known)))
            go_left = np.where(as_missing, self.missing_left[node],
                               np.where(categorical, in_left, x <= self.threshold[node]))
            node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
        raw = self.baseline + self.value[node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw)) if self.logistic else raw
