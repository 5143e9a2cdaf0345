"""The candidate families the model stage fits on one time split, and the choice between them.

Each family is stopped early on the validation days and scored there before any refit, so the
choice uses days no candidate learned from and leaves the holdout to the gate. With both families,
their blend (the mean of the two probabilities) is a third candidate.
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


def parse_families(text: str) -> list[str]:
    """`network,gradient_boosting` as a list, each name checked (a typo is an error, not a silent skip)."""
    families = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if not families or unknown:
        raise ValueError(f"model_families {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                         f"choose among {', '.join(FAMILIES)}")
    return list(dict.fromkeys(families))


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
        # Both fitted on the same rows: their mean is a third candidate, scored the same way.
        network, boosting = found
        found.append(Candidate(BLEND, blend(network.trained, boosting.trained),
                               metrics(label, (net.validation_probability + boosted.validation_probability) / 2),
                               network.fitted_rows, {**network.details, **boosting.details}, network.history))
    return found


def choose(candidates: list[Candidate]) -> Candidate:
    """The candidate with the lowest validation log loss: the quantity both families were stopped on,
    and the one that ranks probabilities by how well they would serve, not only how they order flights."""
    return min(candidates, key=lambda c: (c.validation["log_loss"], -c.validation["roc_auc"]))


def validation_table(candidates: list[Candidate]) -> dict[str, dict[str, float]]:
    return {c.family: {k: round(float(v), 4) for k, v in c.validation.items() if k in ("roc_auc", "log_loss")}
            for c in candidates}

