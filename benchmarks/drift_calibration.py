"""How `feature_drift` was calibrated: the PSI of every model input, week by week over a replayed year,
against a training set of every earlier day (what a weekly retrain would hold).

    python benchmarks/drift_calibration.py --home <state dir with the year built> [--threshold 0.25]

It reads the state directory's latest training set (the year's flights with their features as of
each departure), so nothing is retrieved again. It prints, per input, whether the platform counts
it as a condition (`mlplatform.ml.columns.is_condition`: not judged for drift) or part of the flight
mix, its median, 90th percentile and largest weekly PSI, and in how many weeks it passed the
threshold; then the weeks the check would warn on and why. docs/drift_calibration.md holds the
figures of the replayed 2013.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

WARM_UP_WEEKS = 4  # the first weeks have too little history to be a training set


def weekly_psi(frame: pd.DataFrame, timezone: str = "America/New_York") -> pd.DataFrame:
    """One row per whole week (Monday to Sunday, local time): each input's PSI against all earlier weeks.
    A partial week (the data's last days) is left out: a few hundred flights are not a week's mix."""
    from mlplatform.features.service import CALENDAR_VIEW
    from mlplatform.ml.columns import CATEGORICAL, numeric_inputs, with_derived
    from mlplatform.ml.drift import fit_profile, psi_by_feature

    frame = with_derived(frame)
    numeric = [c for c in numeric_inputs(frame) if not c.startswith(f"{CALENDAR_VIEW}__")]
    categorical = [c for c in CATEGORICAL if c in frame]
    local = frame["scheduled_departure_utc"].dt.tz_convert(timezone).dt.tz_localize(None)
    week = local.dt.to_period("W-SUN").astype(str)
    whole = local.dt.date.groupby(week).nunique() == 7
    rows = []
    for current in sorted(week.unique())[WARM_UP_WEEKS:]:
        if not whole[current]:
            continue
        profile = fit_profile(frame[week < current], numeric, categorical)
        rows.append({"week": current, **psi_by_feature(profile, frame[week == current])})
    return pd.DataFrame(rows).set_index("week")


def summarize(weekly: pd.DataFrame, threshold: float) -> dict:
    from mlplatform.ml.columns import is_condition

    inputs = {name: {"judged": "condition" if is_condition(name) else "flight mix",
                     "median": round(float(values.median()), 3), "p90": round(float(values.quantile(0.9)), 3),
                     "max": round(float(values.max()), 3), "weeks_over": int((values > threshold).sum())}
              for name, values in weekly.items()}
    mix = [name for name in weekly.columns if not is_condition(name)]
    warned = {week: {n: round(float(v), 3) for n, v in row[mix].items() if v > threshold}
              for week, row in weekly.iterrows()}
    everything = (weekly > threshold).sum(axis=1)
    return {"weeks": len(weekly), "threshold": threshold,
            "inputs": dict(sorted(inputs.items(), key=lambda item: -item[1]["median"])),
            "weeks_warned": {week: over for week, over in warned.items() if over},
            "inputs_over_per_week_without_calibration": {"min": int(everything.min()), "max": int(everything.max())}}


def markdown(summary: dict) -> str:
    lines = ["| input | judged as | median PSI | p90 | max | weeks over |", "|---|---|---|---|---|---|"]
    for name, row in summary["inputs"].items():
        lines.append(f"| `{name}` | {row['judged']} | {row['median']} | {row['p90']} | {row['max']} | "
                     f"{row['weeks_over']} of {summary['weeks']} |")
    lines += ["", f"Weeks the check warns on ({len(summary['weeks_warned'])} of {summary['weeks']}):", ""]
    lines += [f"- {week}: " + ", ".join(f"`{n}` {v}" for n, v in over.items())
              for week, over in summary["weeks_warned"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.25)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    from mlplatform.features.training import latest_manifest
    from mlplatform.state import StatePaths

    manifest = latest_manifest(StatePaths.resolve(args.home).training_sets)
    if manifest is None:
        sys.exit(f"{args.home}: no training set; build the year and materialize training_set first")
    summary = summarize(weekly_psi(pd.read_parquet(manifest["path"])), args.threshold)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    print(markdown(summary))


if __name__ == "__main__":
    main()
