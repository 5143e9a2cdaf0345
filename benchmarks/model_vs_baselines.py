"""The gate's comparison on any training set, without Dagster or MLflow: every candidate family as
`trained_model` fits it (early stopping, then the refit on training and validation days), the one it
would register, against the baselines `model_evaluation` fits on the same rows, on the same holdout;
each with the seconds its fits took, so what a family or a baseline costs is read beside what it
adds. Optionally the network's previous defaults beside it, to measure a change of the training
configuration.

    python benchmarks/model_vs_baselines.py --training-set <training_set.parquet> \
        [--holdout-days 14] [--validation-days 14] [--holdout-first-day 2013-11-01] [--compare-old-defaults] \
        [--line flight_delay_live] [--threads 1]

A training set is in any state directory after a pipeline run: `training_sets/<hash>/training_set.parquet`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

# The configuration of the network before the refit and the regularized defaults (2026-11).
OLD_DEFAULTS = {"hidden": (128, 64), "dropout": 0.1, "weight_decay": 1e-5}


def compare(path: Path, holdout_days: int, validation_days: int, holdout_first_day: str | None,
            old_defaults: bool, threads: int = 1, line_model: str | None = None) -> dict:
    """Every family as `trained_model` fits it (the network, gradient boosting, their blend), which one it
    registers by default, and the baselines, on the holdout."""
    import pandas as pd

    from mlplatform.assets.model import network_config
    from mlplatform.features.service import LABEL
    from mlplatform.ml.boosting import BoostingConfig
    from mlplatform.ml.bundle import FAMILIES
    from mlplatform.ml.candidates import fit_candidates, registered, validation_table
    from mlplatform.ml.columns import numeric_inputs
    from mlplatform.ml.device import select_device
    from mlplatform.ml.evaluate import baselines, metrics
    from mlplatform.ml.split import split_by_time
    from mlplatform.ml.train import TrainConfig, fit_network, predict_proba
    from mlplatform.model.lines import LINES
    from mlplatform.resources import ModelSpec

    frame = pd.read_parquet(path)
    numeric = numeric_inputs(frame)
    split = split_by_time(frame, holdout_days=holdout_days, validation_days=validation_days,
                          holdout_first_day=holdout_first_day)
    label = split.holdout[LABEL].astype(bool).to_numpy()
    scores, seconds = {}, {}
    # The line's network settings, as `trained_model` trains it (the first line unless named).
    line = next(candidate for candidate in LINES if line_model in (None, candidate.model))
    candidates = fit_candidates(split, numeric, list(FAMILIES), settings=select_device("cpu", cpu_threads=threads),
                                train_config=network_config(ModelSpec(), line, "binary"),
                                boosting_config=BoostingConfig(), with_refit=True)
    chosen = registered(candidates, ModelSpec().model_family)
    for candidate in candidates:
        scores[candidate.family] = candidate.trained.score(split.holdout)
        seconds[candidate.family] = candidate.fit_seconds
    if old_defaults:
        started = time.perf_counter()
        fitted = fit_network(split, numeric, select_device("cpu"), TrainConfig(**OLD_DEFAULTS))
        scores["network, previous defaults"] = predict_proba(fitted.model, *fitted.pre.transform(split.holdout))
        seconds["network, previous defaults"] = time.perf_counter() - started
    # The baselines as `model_evaluation` fits them: the rows the challenger learned from, its preprocessing.
    pre = chosen.trained.pre
    rows = split.fitting_rows(with_validation=True)
    scores.update(baselines(pre, (*pre.transform(rows), rows[LABEL].astype(bool).to_numpy()),
                            pre.transform(split.holdout), seconds=seconds))
    return {"training_set": str(path), "line": line.model, "split": split.describe(), "fitted_rows": chosen.fitted_rows,
            "chosen": chosen.family,
            "validation": validation_table(candidates),
            "metrics": {name: metrics(label, p) for name, p in scores.items()},
            "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--training-set", type=Path, required=True)
    parser.add_argument("--holdout-days", type=int, default=14)
    parser.add_argument("--validation-days", type=int, help="default: as the platform chooses (ml/split.py)")
    parser.add_argument("--holdout-first-day")
    parser.add_argument("--compare-old-defaults", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="the fits' threads (the platform's default: 1)")
    parser.add_argument("--line", help="the registered model whose network settings to train with (default: the first line)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    from mlplatform.ml.device import limited_threads

    with limited_threads(args.threads):  # as `trained_model` and `model_evaluation` bound their fits
        result = compare(args.training_set, args.holdout_days, args.validation_days, args.holdout_first_day,
                         args.compare_old_defaults, args.threads, args.line)
    print(json.dumps({k: v for k, v in result.items() if k != "metrics"}, indent=1))
    print("| model | fit seconds | ROC AUC | PR AUC | log loss | Brier |\n|---|---|---|---|---|---|")
    for name, m in result["metrics"].items():
        shown = f"{name} (registered)" if name == result["chosen"] else name
        spent = result["seconds"].get(name, "")
        print(f"| {shown} | {spent} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['log_loss']:.4f} | {m['brier']:.4f} |")


if __name__ == "__main__":
    main()
