"""The model families the model stage fits on one time split: the network, gradient boosting, and
their blend (the mean of the two probabilities).

Each part is stopped early on the validation days and scored there before any refit; the figures are
reported side by side. Which family is registered is configuration (`model_spec.model_family`), not
a choice made per run: picked per run on the validation days, the choice was worse on the holdout in
two of four measured cases, where the blend was best or within 0.003 of best in all four
(docs/benchmarks.md, "Model families").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlplatform.features.service import LABEL
from mlplatform.ml.bundle import BLEND, FAMILIES, GRADIENT_BOOSTING, NETWORK, TrainedModel, blend
from mlplatform.ml.split import TimeSplit


@dataclass
class Candidate:
    family: str
    trained: TrainedModel  # what would be registered: refit, unless the refit is off
    validation: dict[str, float]  # metrics of the early-stopped model on the validation days
    fitted_rows: int
    details: dict = field(default_factory=dict)  # epochs or iterations, for the metadata
    history: object = None  # the network's TrainResult (its loss curves)


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
    from mlplatform.ml.evaluate import metrics

    label = split.validation[LABEL].to_numpy()
    found = []
    if NETWORK in families:
        from mlplatform.ml.train import fit_network

        net = fit_network(split, numeric, settings, train_config, with_refit=with_refit,
                          on_epoch=on_epoch, on_refit_epoch=on_refit_epoch)
        found.append(Candidate(NETWORK, TrainedModel(NETWORK, net.pre, net.model),
                               metrics(label, net.validation_probability), net.fitted_rows,
                               {"epochs": len(net.stopped.history), "best_epoch": net.stopped.best_epoch},
                               net.stopped))
    if GRADIENT_BOOSTING in families:
        from mlplatform.ml.boosting import fit_boosting

        boosted = fit_boosting(split, numeric, boosting_config, with_refit=with_refit)
        found.append(Candidate(GRADIENT_BOOSTING, TrainedModel(GRADIENT_BOOSTING, boosted.pre, boosted.model),
                               metrics(label, boosted.validation_probability), boosted.fitted_rows,
                               {"iterations": boosted.iterations}))
    if len(found) == 2:
        # Both fitted on the same rows: their mean, scored the same way.
        network, boosting = found
        found.append(Candidate(BLEND, blend(network.trained, boosting.trained),
                               metrics(label, (net.validation_probability + boosted.validation_probability) / 2),
                               network.fitted_rows, {**network.details, **boosting.details}, network.history))
    return found


def registered(candidates: list[Candidate], family: str) -> Candidate:
    return next(c for c in candidates if c.family == family)


def validation_table(candidates: list[Candidate]) -> dict[str, dict[str, float]]:
    return {c.family: {k: round(float(v), 4) for k, v in c.validation.items() if k in ("roc_auc", "log_loss")}
            for c in candidates}

