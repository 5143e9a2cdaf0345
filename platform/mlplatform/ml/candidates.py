"""The model families the model stage fits on one time split: the network, gradient boosting, and
their blend (the mean of the two probabilities).

Each part is stopped early on the validation days and scored there before any refit; the figures are
reported side by side. Which family is registered is configuration (`model_spec.model_family`), not
a choice made per run: picked per run on the validation days, the choice was worse on the holdout in
three of four measured cases, where the blend was the best of the three in every one
(docs/benchmarks.md, "Model families").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlplatform.features.service import LABEL
from mlplatform.ml.bundle import BLEND, FAMILIES, GRADIENT_BOOSTING, NETWORK, TrainedModel, blend
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


def parts_of(family: str) -> list[str]:
    """The families to fit for `family`: itself, or (a blend) both. An unknown name is an error."""
    if family == BLEND:
        return list(FAMILIES)
    if family not in FAMILIES:
        raise ValueError(f"model_family {family!r} is unknown; choose among {', '.join((*FAMILIES, BLEND))}")
    return [family]


def fit_candidates(split: TimeSplit, numeric: list[str], families: list[str], *, settings, train_config,
                   boosting_config, with_refit: bool,
                   on_epoch: Callable | None = None, on_refit_epoch: Callable | None = None) -> list[Candidate]:
    """Each family fitted on the split, for the task of `train_config` (`boosting_config` agrees)."""
    from functools import partial

    from mlplatform.ml.task import metrics as task_metrics

    if boosting_config.task != train_config.task:
        raise ValueError(f"the network's task {train_config.task!r} and the boosting's {boosting_config.task!r} differ")
    metrics = partial(task_metrics, train_config.task)
    label = split.validation[LABEL].to_numpy()
    found = []
    if NETWORK in families:
        from mlplatform.ml.train import fit_network

        net = fit_network(split, numeric, settings, train_config, with_refit=with_refit,
                          on_epoch=on_epoch, on_refit_epoch=on_refit_epoch)
        found.append(Candidate(NETWORK, TrainedModel(NETWORK, net.pre, net.model), net.validation_probability,
                               metrics(label, net.validation_probability), net.fitted_rows,
                               {"epochs": len(net.stopped.history), "best_epoch": net.stopped.best_epoch},
                               net.stopped))
    if GRADIENT_BOOSTING in families:
        from mlplatform.ml.boosting import fit_boosting

        boosted = fit_boosting(split, numeric, boosting_config, with_refit=with_refit)
        found.append(Candidate(GRADIENT_BOOSTING, TrainedModel(GRADIENT_BOOSTING, boosted.pre, boosted.model),
                               boosted.validation_probability, metrics(label, boosted.validation_probability),
                               boosted.fitted_rows, {"iterations": boosted.iterations}))
    if len(found) == 2:
        # Both fitted on the same rows: their mean, scored the same way.
        network, boosting = found
        probability = (network.validation_probability + boosting.validation_probability) / 2
        found.append(Candidate(BLEND, blend(network.trained, boosting.trained), probability,
                               metrics(label, probability), network.fitted_rows,
                               {**network.details, **boosting.details}, network.stopped))
    return found


def registered(candidates: list[Candidate], family: str) -> Candidate:
    return next(c for c in candidates if c.family == family)


def validation_table(candidates: list[Candidate], task: str = "binary") -> dict[str, dict[str, float]]:
    """Each candidate's validation figures (binary: ROC AUC and log loss; regression: RMSE and MAE),
    with its epochs or iterations."""
    from mlplatform.ml.task import VALIDATION_METRICS

    return {c.family: {**{k: round(float(c.validation[k]), 4) for k in VALIDATION_METRICS[task]}, **c.details}
            for c in candidates}

