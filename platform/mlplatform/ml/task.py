"""The two kinds of task a use case can declare, and what differs between them in the model code.

    binary      a probability of the positive outcome: a logistic output, log loss, ROC AUC
    regression  a number: a linear output on the standardized target, squared error, RMSE

Everything else (the splits, the preprocessing, the families, early stopping, the refit) is the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where used: the sensors' module reads this one at load
    import numpy as np

BINARY, REGRESSION = "binary", "regression"
TASKS = (BINARY, REGRESSION)
# The figures each task's models are compared by on the validation days, the first one choosing.
VALIDATION_METRICS = {BINARY: ("roc_auc", "log_loss"), REGRESSION: ("rmse", "mae")}
# Whether more of a metric is better.
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False,
                    "rmse": False, "mae": False, "r2": True}


def check(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task {task!r} is unknown; choose {BINARY} or {REGRESSION}")
    return task


def target(task: str, label) -> np.ndarray:
    """The label as the models learn it: 0/1 for binary, float for regression."""
    import numpy as np

    values = np.asarray(label)
    return values.astype(bool).astype(np.float32) if task == BINARY else values.astype(np.float64)


def metrics(task: str, label, prediction) -> dict[str, float]:
    """Every figure of the task on these rows (binary: `ml.evaluate.metrics`)."""
    if task == BINARY:
        from mlplatform.ml.evaluate import metrics as binary_metrics

        figures = binary_metrics(label, prediction)
        # The same names as a regression's, for what reads either task's figures.
        return {**figures, "mean_predicted": figures["predicted_rate"], "mean_realized": figures["realized_rate"]}
    import numpy as np

    y = np.asarray(label, dtype=np.float64)
    p = np.asarray(prediction, dtype=np.float64)
    error = p - y
    spread = float(np.sum((y - y.mean()) ** 2)) if len(y) else 0.0
    return {"rmse": float(np.sqrt(np.mean(error ** 2))) if len(y) else float("nan"),
            "mae": float(np.mean(np.abs(error))) if len(y) else float("nan"),
            "r2": 1.0 - float(np.sum(error ** 2)) / spread if spread > 0 else float("nan"),
            "mean_predicted": float(p.mean()) if len(p) else float("nan"),
            "mean_realized": float(y.mean()) if len(y) else float("nan"), "rows": int(len(y))}


def drop(metric: str, evaluated: float | None, realized: float | None) -> float | None:
    """How much worse the realized figure is than the evaluated one (positive: worse), or None."""
    if evaluated is None or realized is None:
        return None
    return evaluated - realized if HIGHER_IS_BETTER[metric] else realized - evaluated


def allowed_drop(metric: str, evaluated: float | None, declared: float | None, auc_margin: float) -> float:
    """The drop past which live performance warns and retraining fires, in the metric's own units:
    the use case's `task.drop_margin` when declared, else the retrain policy's margin for ROC AUC
    (a bounded score) and a tenth of the evaluated figure for any other metric (errors scale with
    the label)."""
    if declared is not None:
        return declared
    if metric == "roc_auc" or evaluated is None:
        return auc_margin
    return round(abs(evaluated) / 10, 6)


def better(metric: str, a: float, b: float) -> bool:
    """Whether `a` is strictly better than `b` on `metric`."""
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def best(metric: str, figures: dict[str, dict[str, float]]) -> str:
    """The name whose figures are best on `metric`."""
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return max(figures, key=lambda name: sign * figures[name][metric])
