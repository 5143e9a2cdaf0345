"""What the same-day features are worth: the gate's comparison (`model_vs_baselines.compare`) on a
training set as the day-ahead model has it, then with the same-day features of each flight as of
`--lead` minutes before its scheduled departure (the second point-in-time join a live model's
training set makes, `features.training.retrieve_same_day`).

    python benchmarks/same_day_lift.py --home <state dir with the year built> \
        [--lead 60] [--holdout-first-day 2013-11-01] [--validation-days 14]

The state directory needs the dbt same-day models built and the feature definitions applied.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_vs_baselines import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--lead", type=int, default=60)
    parser.add_argument("--holdout-days", type=int, default=14)
    parser.add_argument("--validation-days", type=int, help="default: as the platform chooses (ml/split.py)")
    parser.add_argument("--holdout-first-day")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    os.environ["MLPLATFORM_HOME"] = str(args.home)
    import pandas as pd

    from mlplatform.features.repo import open_store
    from mlplatform.features.training import latest_manifest, retrieve_same_day
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(args.home)
    day_ahead = Path(latest_manifest(paths.training_sets)["path"])
    frame = pd.read_parquet(day_ahead)
    same_day = retrieve_same_day(open_store(paths), frame, args.lead)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live.parquet"
        frame.merge(same_day, on="flight_id", how="left").to_parquet(live)
        for name, path in (("day-ahead", day_ahead), (f"with same-day features, lead {args.lead} min", live)):
            results[name] = compare(path, args.holdout_days, args.validation_days, args.holdout_first_day, False)
    print(json.dumps({name: {"split": r["split"], "seconds": r["seconds"], "chosen": r["chosen"],
                             "validation": r["validation"]} for name, r in results.items()}, indent=1))
    print("| features | model | ROC AUC | PR AUC | log loss |\n|---|---|---|---|---|")
    for name, r in results.items():
        for model, m in r["metrics"].items():
            model = f"{model} (registered)" if model == r["chosen"] else model
            print(f"| {name} | {model} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['log_loss']:.4f} |")


if __name__ == "__main__":
    main()
