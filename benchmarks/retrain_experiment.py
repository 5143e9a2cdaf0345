"""Experiment: 2013 replayed a week at a time with the retrain policy, against a model trained once.

A fresh state directory gets January; `mlplatform pipeline` builds it and trains the first champion
(trained on January only). Then each step lands the next week and runs the pipeline again, which is
what the sensors do as days land: refresh, score the week with the champion of the moment (batch
predictions), decide whether to retrain, and retrain, gate and promote when the policy says so.
At the end, the realized ROC AUC of each month is computed twice on the same flights: for the
predictions the sensor-retrained champions made at the time, and for the January model scoring
the same flights with the same point-in-time features.

    python benchmarks/retrain_experiment.py --home /tmp/experiment [--step-days 7]

Model spec and policy come from the environment as in `dagster dev` (MLPLATFORM_MODEL_*,
MLPLATFORM_RETRAIN_*); the script sets 7 holdout and 7 validation days (January must train a
model) and no cooldown (the cooldown is wall-clock time, and a replay compresses weeks into
minutes), unless they are set already.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"MLPLATFORM_MODEL_HOLDOUT_DAYS": "7", "MLPLATFORM_MODEL_VALIDATION_DAYS": "7",
            "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "0"}


def monthly_auc(paths, january_version: int) -> list[dict]:
    import mlflow
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.repo import open_store
    from mlplatform.features.service import PREDICTION_KEY, LABEL, SERVICE_NAME
    from mlplatform.features.training import ENTITY_TABLE, labeled_rows, retrieve
    from mlplatform.ingest.lake import Lake
    from mlplatform.ml.evaluate import metrics
    from mlplatform.model.tracking import REGISTERED_MODEL, client

    exports = Lake(paths.exports)
    client(paths)
    january = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{january_version}")
    store = open_store(paths)
    rows = []
    for month in range(2, 13):
        first, last = date(2013, month, 1), (date(2013, month + 1, 1) if month < 12 else date(2014, 1, 1)) - timedelta(days=1)
        days = [d for d in exports.days("predictions") if first.isoformat() <= d <= last.isoformat()]
        if not days:
            continue
        live = pd.concat([pq.read_table(exports.path("predictions", d)).to_pandas() for d in days])
        labels = pd.concat([pq.read_table(exports.path(ENTITY_TABLE, d), columns=[PREDICTION_KEY, LABEL]).to_pandas()
                            for d in days]).dropna()
        live = live.merge(labels, on=PREDICTION_KEY)
        flights, _ = labeled_rows(exports, days[0], days[-1])
        frame = retrieve(store, flights, SERVICE_NAME)
        frame = frame[frame[PREDICTION_KEY].isin(live[PREDICTION_KEY])]
        fixed = metrics(frame[LABEL].astype(int).to_numpy(), january.predict(frame))
        retrained = metrics(live[LABEL].astype(int).to_numpy(), live["delay_probability"].to_numpy())
        rows.append({"month": f"2013-{month:02d}", "flights": int(len(live)),
                     "champion_versions": sorted(int(v) for v in np.unique(live["model_version"])),
                     "retrained_auc": round(retrained["roc_auc"], 4), "january_model_auc": round(fixed["roc_auc"], 4)})
    return rows


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(7, 3.6), dpi=100)
    months = [r["month"][5:] for r in rows]
    plt.plot(months, [r["retrained_auc"] for r in rows], marker="o", label="sensor-retrained champion")
    plt.plot(months, [r["january_model_auc"] for r in rows], marker="o", label="trained once on January")
    plt.xlabel("2013 month"), plt.ylabel("realized ROC AUC"), plt.legend(), plt.title("Retraining policy, 2013 replayed")
    fig.tight_layout()
    fig.savefig(out)


def write_markdown(result: dict, out: Path) -> None:
    rows = result["months"]
    lines = ["# A year replayed: sensor-retrained champions against a model trained once", "",
             "`python benchmarks/retrain_experiment.py --home <empty dir>` (this page: `--render "
             "docs/retrain_experiment.json`). 2013 is landed a week at a time; after each week "
             "`mlplatform pipeline` refreshes the week (the champion of the moment scores it: batch "
             "predictions), then the retrain policy decides, and a retrain trains, gates and promotes. The "
             "first champion is trained on January. Each month's realized ROC AUC is computed on the same "
             "flights twice: from the predictions the champions of the time made, and by the January "
             "model with the same point-in-time features.", "",
             f"Machine: {result['machine']}, {result['date']}; {result['minutes']} minutes; step "
             f"{result['step_days']} days; {result['promotions']} promotions. Settings: "
             + ", ".join(f"`{k}={v}`" for k, v in result["settings"].items()) + " (the rest default).", "",
             "| month | flights | champion versions | sensor-retrained AUC | January model AUC | difference |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['month']} | {r['flights']:,} | {', '.join(map(str, r['champion_versions']))} | "
                     f"{r['retrained_auc']:.4f} | {r['january_model_auc']:.4f} | "
                     f"{r['retrained_auc'] - r['january_model_auc']:+.4f} |")
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    lines += ["", f"Mean over the months: sensor-retrained {mean('retrained_auc'):.4f}, January model "
                  f"{mean('january_model_auc'):.4f}.", "", f"![monthly AUC]({out.with_suffix('.png').name})", "",
              "## The decisions, week by week", "", "| landed through | decision | champion | failed runs |",
              "|---|---|---|---|"]
    for step in result["steps"]:
        lines.append(f"| {step['through']} | {step['decision'].replace('|', '/')} | {step['champion_version']} | "
                     f"{', '.join(step['failed_runs']) or ''} |")
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--step-days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "retrain_experiment.json")
    parser.add_argument("--render", type=Path, default=None, help="only write the page and plot from this JSON")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
        plot(result["months"], args.render.with_suffix(".png"))
        write_markdown(result, args.render.with_suffix(".md"))
        return
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)

    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.replay import Replayer
    from mlplatform.model.deployment import history
    from mlplatform.pipeline import run_pipeline
    from mlplatform.state import StatePaths

    paths = StatePaths.resolve(args.home).ensure()
    replayer = Replayer(LandingZone(paths.landing, paths.quarantine))
    started = time.monotonic()
    steps = []
    through = date(2013, 1, 31)
    while True:
        replayer.replay(through=through)
        outcome = run_pipeline(paths, say=lambda line: None)
        steps.append({"through": through.isoformat(), "decision": outcome.retrain_decision,
                      "champion_version": outcome.champion_version, "failed_runs": [r.job for r in outcome.failed]})
        print(json.dumps(steps[-1]), flush=True)
        if through >= date(2013, 12, 31):
            break
        through = min(through + timedelta(days=args.step_days), date(2013, 12, 31))
    promotions = [e for e in history(paths) if e["action"] == "promote"]
    rows = monthly_auc(paths, promotions[0]["version"])
    result = {"benchmark": "retrain_experiment", "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "step_days": args.step_days,
              "settings": {k: os.environ[k] for k in sorted(os.environ) if k.startswith(("MLPLATFORM_MODEL_", "MLPLATFORM_RETRAIN_"))},
              "minutes": round((time.monotonic() - started) / 60, 1), "promotions": len(promotions),
              "months": rows, "steps": steps}
    args.out.write_text(json.dumps(result, indent=2))
    plot(rows, args.out.with_suffix(".png"))
    write_markdown(result, args.out.with_suffix(".md"))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
