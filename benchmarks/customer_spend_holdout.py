"""Customer spend's champion on the holdout the issue names, beside its baselines and an independent
gradient boosting.

    python benchmarks/customer_spend_holdout.py [STATE_DIR]

Replays the CDNOW purchases through 1998-06-29 (outcomes known through 1998-03-31), runs
`mlplatform pipeline` with the holdout from 1997-12-01 (so the model learns from outcomes known
before it: purchases through 1997-09-01), scores the holdout days with `batch_predictions`, and
compares, on the same customer-days:
- the champion's RMSE and MAE as `model_evaluation` logged them, and as computed from its stored
  batch predictions;
- its own baselines (training mean, ridge, HistGradientBoosting), as logged;
- an independent HistGradientBoostingRegressor with scikit-learn's defaults on the customer's own
  history (the training set's columns), fitted on purchases of 1997-01-01 .. 1997-09-01;
- the naive prediction: the spend of the last 90 days.
Writes benchmarks/results/customer_spend.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, machine, platform_env  # noqa: E402

HOLDOUT = ("1997-12-01", "1998-03-31")
TRAINED_THROUGH = "1997-09-01"
SETTINGS = {"MLPLATFORM_USE_CASES": "customer_spend", "MLPLATFORM_MODEL_HOLDOUT_FIRST_DAY": HOLDOUT[0]}


def _run(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(done.stdout.strip()[-1500:], flush=True)
    return time.perf_counter() - started


def main(home: Path) -> dict:
    import mlflow
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    env = platform_env(home, SETTINGS)
    seconds = {"replay": _run([str(BIN / "mlplatform"), "replay", "--through", "1998-06-29", "--no-events"], env)}
    seconds["pipeline"] = _run([str(BIN / "mlplatform"), "pipeline"], env)
    seconds["batch_predictions"] = _run([str(BIN / "dagster"), "asset", "materialize", "-m", "mlplatform.definitions",
                                         "--select", "batch_predictions", "--partition-range",
                                         f"{HOLDOUT[0]}...{HOLDOUT[1]}"], env)

    exports = home / "warehouse" / "exports"
    days = [p.parent.name.removeprefix("date=") for p in sorted((exports / "predictions").glob("date=*/data.parquet"))]
    days = [d for d in days if HOLDOUT[0] <= d <= HOLDOUT[1]]
    read = lambda table, d: pq.read_table(exports / table / f"date={d}" / "data.parquet").to_pandas()  # noqa: E731
    stored = pd.concat([read("predictions", d) for d in days]).merge(
        pd.concat([read("fct_customer_purchases", d) for d in days])[["customer_day_id", "spend_next_90d"]],
        on="customer_day_id")
    error = stored["predicted_spend_90d"] - stored["spend_next_90d"]
    computed = {"rmse": float(np.sqrt((error ** 2).mean())), "mae": float(error.abs().mean()), "rows": len(stored)}

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    tracker = mlflow.MlflowClient()
    champion = tracker.get_model_version_by_alias("customer_spend", "champion")
    logged = {k.removeprefix("holdout_"): v for k, v in tracker.get_run(champion.run_id).data.metrics.items()
              if k.startswith("holdout_") and k.endswith(("_rmse", "_mae"))}

    manifest = json.loads((home / "training_sets" / "latest.json").read_text())["manifest"]
    frame = pd.read_parquet(json.loads(Path(manifest).read_text())["path"])
    frame["day"] = pd.to_datetime(frame["purchased_at_utc"], utc=True).dt.strftime("%Y-%m-%d")
    features = [c for c in frame.columns if c.startswith("customer_history__")]
    train = frame[frame["day"] <= TRAINED_THROUGH]
    holdout = frame[(frame["day"] >= HOLDOUT[0]) & (frame["day"] <= HOLDOUT[1])]
    from sklearn.ensemble import HistGradientBoostingRegressor

    reference = HistGradientBoostingRegressor(random_state=0).fit(train[features], train["spend_next_90d"])
    independent = {}
    for name, predicted in (("independent_hist_gradient_boosting", reference.predict(holdout[features])),
                            ("naive_last_90_days", holdout["customer_history__spend_last_90d"].fillna(0))):
        e = np.asarray(predicted) - holdout["spend_next_90d"].to_numpy()
        independent[name] = {"rmse": float(np.sqrt((e ** 2).mean())), "mae": float(np.abs(e).mean())}
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "seconds": seconds,
              "holdout": f"{HOLDOUT[0]} .. {HOLDOUT[1]}", "holdout_rows": len(holdout),
              "trained_through": TRAINED_THROUGH, "champion_version": int(champion.version),
              "champion_family": champion.tags.get("model_family"), "gate": champion.tags.get("gate_reason"),
              "logged": logged, "champion_from_stored_predictions": computed, "independent": independent}
    (ROOT / "benchmarks" / "results" / "customer_spend.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="customer-spend-")) / "home")
