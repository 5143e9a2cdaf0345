"""Training and evaluation plots as PNG bytes: MLflow artifacts, and pictures in the Dagster UI itself
(`in_ui`: Markdown metadata with the PNG inline, beside the link to the MLflow artifact)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(5, 3.6), dpi=80)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def loss_curves(train: Sequence[float], validation: Sequence[float], best_epoch: int) -> bytes:
    plt, fig = _figure()
    epochs = np.arange(1, len(train) + 1)
    plt.plot(epochs, train, label="training")
    plt.plot(epochs, validation, label="validation")
    plt.axvline(best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})")
    plt.xlabel("epoch"), plt.ylabel("log loss"), plt.legend(), plt.title("Loss")
    return _png(plt, fig)


def roc_curves(label: np.ndarray, scores: Mapping[str, np.ndarray]) -> bytes:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt, fig = _figure()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(label, p)
        plt.plot(fpr, tpr, label=f"{name} ({roc_auc_score(label, p):.3f})")
    plt.plot([0, 1], [0, 1], color="grey", linestyle=":")
    plt.xlabel("false positive rate"), plt.ylabel("true positive rate"), plt.legend(fontsize=7)
    plt.title("ROC on the holdout")
    return _png(plt, fig)


def calibration_plot(bins: Mapping[str, Sequence[Mapping[str, float]]]) -> bytes:
    plt, fig = _figure()
    for name, rows in bins.items():
        plt.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], marker="o", label=name)
    plt.plot([0, 1], [0, 1], color="grey", linestyle=":")
    plt.xlabel("predicted delay probability"), plt.ylabel("observed delay rate"), plt.legend(fontsize=7)
    plt.title("Calibration on the holdout")
    return _png(plt, fig)


def predicted_vs_actual(label: np.ndarray, scores: Mapping[str, np.ndarray]) -> bytes:
    """A regression's predictions against the outcomes, one colour per model (the 45° line is perfect)."""
    plt, fig = _figure()
    for name in [n for n in ("challenger", "champion") if n in scores] or list(scores)[:1]:
        plt.scatter(label, scores[name], s=4, alpha=0.4, label=name)
    top = float(max(np.max(label), *(np.max(scores[n]) for n in scores))) if len(label) else 1.0
    plt.plot([0, top], [0, top], color="grey", linestyle=":")
    plt.xlabel("actual"), plt.ylabel("predicted"), plt.legend(fontsize=7)
    plt.title("Predicted against actual on the holdout")
    return _png(plt, fig)


def residuals(label: np.ndarray, scores: Mapping[str, np.ndarray]) -> bytes:
    """The distribution of each model's errors (prediction - outcome) on the holdout."""
    plt, fig = _figure()
    for name, prediction in scores.items():
        plt.hist(np.asarray(prediction) - np.asarray(label), bins=40, histtype="step", label=name)
    plt.axvline(0, color="grey", linestyle=":")
    plt.xlabel("prediction - actual"), plt.ylabel("rows"), plt.legend(fontsize=7)
    plt.title("Residuals on the holdout")
    return _png(plt, fig)


def in_ui(png: bytes, title: str):
    """The plot as Dagster Markdown metadata with the picture inline (a data URI): the asset's page
    shows it without the MLflow UI running."""
    import base64

    import dagster as dg

    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")
