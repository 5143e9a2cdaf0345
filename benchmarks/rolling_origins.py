"""Would judging the candidates on several weeks choose better than one validation fortnight? On a
state directory's latest training set: rolling origins inside the days before the holdout (weekly
folds, each fitted on every earlier day and scored on its week), for each family, each linear
strength and their blends; beside each, its figure on the validation fortnight and on the holdout as
`trained_model` fits it (early stopping on the validation days, then the refit on every day before
the holdout), and the baselines `model_evaluation` fits. Binary use cases (ROC AUC).

    MLPLATFORM_HOME=<home> python benchmarks/rolling_origins.py [--window 7] [--folds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def fit_parts(split, numeric, settings, config, refit: bool) -> tuple[dict, dict]:
    """Validation (and with `refit`, holdout) predictions of the network, the boosting and the linear
    model at each strength."""
    from mlplatform.features.service import LABEL
    from mlplatform.ml.boosting import BoostingConfig, fit_boosting
    from mlplatform.ml.bundle import GRADIENT_BOOSTING, NETWORK, TrainedModel
    from mlplatform.ml.columns import CATEGORICAL
    from mlplatform.ml.linear import STRENGTHS, fit_at_strength
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.train import fit_network

    net = fit_network(split, numeric, settings, config, with_refit=refit)
    boosted = fit_boosting(split, numeric, BoostingConfig(seed=config.seed), with_refit=refit)
    validation = {"network": net.validation_probability, "boosting": boosted.validation_probability}
    holdout = {}
    if refit:
        holdout["network"] = TrainedModel(NETWORK, net.pre, net.model).score(split.holdout)
        holdout["boosting"] = TrainedModel(GRADIENT_BOOSTING, boosted.pre, boosted.model).score(split.holdout)
    pre = Preprocessor.fit(split.train, list(CATEGORICAL), numeric)
    cats, nums = pre.transform(split.train)
    v_cats, v_nums = pre.transform(split.validation)
    rows = split.fitting_rows(with_validation=True)
    refit_pre = Preprocessor.fit(rows, list(CATEGORICAL), numeric)
    for strength in STRENGTHS:
        validation[f"linear {strength}"] = fit_at_strength(
            pre, cats, nums, split.train[LABEL].to_numpy().astype(int), "binary", strength).predict(v_cats, v_nums)
        if refit:
            model = fit_at_strength(refit_pre, *refit_pre.transform(rows), rows[LABEL].to_numpy().astype(int),
                                    "binary", strength)
            holdout[f"linear {strength}"] = model.predict(*refit_pre.transform(split.holdout))
    return validation, holdout


def with_blends(parts: dict) -> dict:
    """Each part, and the means of the network, the boosting and each linear strength."""
    linear = [name for name in parts if name.startswith("linear")]
    out = {**parts, "network + boosting": (parts["network"] + parts["boosting"]) / 2}
    for name in linear:
        out[f"network + {name}"] = (parts["network"] + parts[name]) / 2
        out[f"boosting + {name}"] = (parts["boosting"] + parts[name]) / 2
        out[f"network + boosting + {name}"] = (parts["network"] + parts["boosting"] + parts[name]) / 3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=7, help="days per fold")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from mlplatform.assets.model import load_split
    from mlplatform.features.service import LABEL
    from mlplatform.ml.columns import CATEGORICAL
    from mlplatform.ml.device import select_device
    from mlplatform.ml.evaluate import baselines
    from mlplatform.ml.preprocess import Preprocessor
    from mlplatform.ml.split import TimeSplit, local_day
    from mlplatform.ml.train import TrainConfig
    from mlplatform.resources import ModelSpec
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve()
    manifest = json.loads((Path(json.loads((paths.training_sets / "latest.json").read_text())["manifest"])).read_text())
    spec = ModelSpec()
    numeric, split = load_split(spec, manifest)
    settings = select_device("cpu", batch_size=spec.batch_size, cpu_threads=1)
    config = TrainConfig(max_epochs=spec.max_epochs, patience=spec.patience, learning_rate=spec.learning_rate,
                         seed=spec.seed)
    before = pd.concat([split.train, split.validation])
    days = local_day(before)
    ordered = sorted(days.unique())
    folds: dict[str, list[float]] = {}
    for k in range(args.folds):
        end = len(ordered) - k * args.window
        first, last = ordered[end - args.window], ordered[end - 1]
        fold = TimeSplit(train=before[days < first], validation=before[(days >= first) & (days <= last)],
                         holdout=before.iloc[:0], holdout_first_day=split.holdout_first_day)
        label = fold.validation[LABEL].to_numpy().astype(int)
        for name, p in with_blends(fit_parts(fold, numeric, settings, config, refit=False)[0]).items():
            folds.setdefault(name, []).append(roc_auc_score(label, p))
        print(f"fold {k}: {first} .. {last}, fitted on {len(fold.train):,} rows", flush=True)
    validation, holdout = fit_parts(split, numeric, settings, config, refit=True)
    v_label = split.validation[LABEL].to_numpy().astype(int)
    h_label = split.holdout[LABEL].to_numpy().astype(int)
    pre = Preprocessor.fit(before, list(CATEGORICAL), numeric)
    opponents = baselines(pre, (*pre.transform(before), before[LABEL].to_numpy().astype(int)), pre.transform(split.holdout))
    print("baselines on the holdout:", {n: round(roc_auc_score(h_label, p), 4) for n, p in opponents.items()
                                        if n != "base_rate"})
    v_auc = {n: roc_auc_score(v_label, p) for n, p in with_blends(validation).items()}
    h_auc = {n: roc_auc_score(h_label, p) for n, p in with_blends(holdout).items()}
    print(f"{'candidate':34s} {'folds, newest first':26s} {'mean':>7s} {'fortnight':>9s} {'holdout':>8s}")
    for name in sorted(folds, key=lambda n: -np.mean(folds[n])):
        print(f"{name:34s} {' '.join(f'{a:.4f}' for a in folds[name]):26s} {np.mean(folds[name]):7.4f} "
              f"{v_auc[name]:9.4f} {h_auc[name]:8.4f}")


if __name__ == "__main__":
    main()
