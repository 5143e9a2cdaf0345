"""The model families the model stage fits on one time split: the network, gradient boosting, their
blend (the mean of the two probabilities), and a linear model.

Each part is stopped early on the validation days and scored there before any refit; the figures are
reported side by side. Which family is registered is configuration (`model_spec.model_family`), not
a choice made per run: picked per run on the validation days, the choice was mostly worse on the
holdout than the blend, which was the best of the three in every case measured
(docs/benchmarks.md, "Model families"). On little data the linear model can be what generalizes:
`auto` fits every family and registers the best on the validation days, and the gate then holds it
against the baselines on the holdout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlplatform.features.service import LABEL
from mlplatform.ml.bundle import AUTO, BLEND, FAMILIES, GRADIENT_BOOSTING, LINEAR, NETWORK, TrainedModel, blend
from mlplatform.ml.split import TimeSplit


@dataclass
class Candidate:
    family: str
    trained: TrainedModel  # what would be registered: refit, unless the refit is off
    validation_probability: Any  # the early-stopped model's, on the validation days (before any refit)
    validation: dict[str, float]  # their metrics
    fitted_rows: int
    details: dict = field(default_factory=dict)  # epochs or iterations, for the metadata
    stopped: Any = None  # the network's early-stopped TrainResult (its loss curves)
    fit_seconds: float = 0.0  # its fits (early-stopped and refit); a blend's, its parts'


def parts_of(family: str) -> list[str]:
    """The families to fit for `family`: itself, (a blend) the network and the boosting, or (auto)
    every one. An unknown name is an error."""
    if family == BLEND:
        return [NETWORK, GRADIENT_BOOSTING]
    if family == AUTO:
        return list(FAMILIES)
    if family not in FAMILIES:
        raise ValueError(f"model_family {family!r} is unknown; choose among "
                         f"{', '.join((*FAMILIES, BLEND, AUTO))}")
    return [family]


def fit_candidates(split: TimeSplit, numeric: list[str], families: list[str], *, settings, train_config,
                   boosting_config, with_refit: bool,
                   on_epoch: Callable | None = None, on_refit_epoch: Callable | None = None) -> list[Candidate]:
    """Each family fitted on the split, for the task of `train_config` (`boosting_config` agrees)."""
    from functools import partial

    from mlplatform.ml.evaluate import timed
    from mlplatform.ml.task import metrics as task_metrics

    if boosting_config.task != train_config.task:
        raise ValueError(f"the network's task {train_config.task!r} and the boosting's {boosting_config.task!r} differ")
    metrics = partial(task_metrics, train_config.task)
    label = split.validation[LABEL].to_numpy()
    found, spent = [], {}
    if NETWORK in families:
        from mlplatform.ml.train import fit_network

        with timed(spent, NETWORK):
            net = fit_network(split, numeric, settings, train_config, with_refit=with_refit,
                              on_epoch=on_epoch, on_refit_epoch=on_refit_epoch)
        found.append(Candidate(NETWORK, TrainedModel(NETWORK, net.pre, net.model), net.validation_probability,
                               metrics(label, net.validation_probability), net.fitted_rows,
                               {"epochs": len(net.stopped.history), "best_epoch": net.stopped.best_epoch},
                               net.stopped, spent[NETWORK]))
    if GRADIENT_BOOSTING in families:
        from mlplatform.ml.boosting import fit_boosting

        with timed(spent, GRADIENT_BOOSTING):
            boosted = fit_boosting(split, numeric, boosting_config, with_refit=with_refit)
        found.append(Candidate(GRADIENT_BOOSTING, TrainedModel(GRADIENT_BOOSTING, boosted.pre, boosted.model),
                               boosted.validation_probability, metrics(label, boosted.validation_probability),
                               boosted.fitted_rows, {"iterations": boosted.iterations},
                               fit_seconds=spent[GRADIENT_BOOSTING]))
    if LINEAR in families:
        from mlplatform.ml.columns import CATEGORICAL
        from mlplatform.ml.linear import fit_linear

        with timed(spent, LINEAR):
            linear = fit_linear(split, list(CATEGORICAL), numeric, train_config.task, with_refit=with_refit)
        found.append(Candidate(LINEAR, TrainedModel(LINEAR, linear.pre, linear.model), linear.validation_probability,
                               metrics(label, linear.validation_probability), linear.fitted_rows,
                               {"strength": linear.strength}, fit_seconds=spent[LINEAR]))
    by_family = {c.family: c for c in found}
    if NETWORK in by_family and GRADIENT_BOOSTING in by_family:
        # Both fitted on the same rows: their mean, scored the same way.
        network, boosting = by_family[NETWORK], by_family[GRADIENT_BOOSTING]
        probability = (network.validation_probability + boosting.validation_probability) / 2
        found.append(Candidate(BLEND, blend(network.trained, boosting.trained), probability,
                               metrics(label, probability), network.fitted_rows,
                               {**network.details, **boosting.details}, network.stopped,
                               network.fit_seconds + boosting.fit_seconds))
    return found


def registered(candidates: list[Candidate], family: str, task: str = "binary") -> Candidate:
    """The candidate to register: the family asked for, or (auto) the best on the validation days by
    the task's first validation metric."""
    if family == AUTO:
        from mlplatform.ml.task import VALIDATION_METRICS, best

        figures = {c.family: c.validation for c in candidates}
        return next(c for c in candidates if c.family == best(VALIDATION_METRICS[task][0], figures))
    return next(c for c in candidates if c.family == family)


def validation_table(candidates: list[Candidate], task: str = "binary") -> dict[str, dict[str, float]]:
    """Each candidate's validation figures (binary: ROC AUC and log loss; regression: RMSE and MAE),
    with its epochs or iterations and the seconds its fits took: what a family adds beside what it costs."""
    from mlplatform.ml.task import VALIDATION_METRICS

    return {c.family: {**{k: round(float(c.validation[k]), 4) for k in VALIDATION_METRICS[task]}, **c.details,
                       "fit_seconds": round(c.fit_seconds, 1)}
            for c in candidates}

