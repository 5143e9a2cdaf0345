"""Shadow deployment: a challenger that passed its offline gate first scores beside the champion.

With `model_spec.shadow_days` = N > 0 and a champion in place, `deployed_model` does not promote a
gated challenger at once: it gives it the registry alias `shadow`. From then on `batch_predictions`
scores each day's flights with it too (the export `shadow_predictions`, beside the champion's
`predictions`), and the API scores every day-ahead request with it in the prediction log's writing
thread (rows with the endpoint suffixed ` (shadow)`): logged, never returned, and off the request's
path. Once N scored days are labeled, the retrain sensor (or `mlplatform pipeline`) runs
`deployed_model` again, which promotes the shadow if its realized ROC AUC on those days' flights is
no worse than the champion's on the same flights (within `gate_tolerance`), and retires it
otherwise. A newer gated challenger replaces the one in shadow. The first champion never waits: with
no champion there is nothing to compare with. The live model (`flight_delay_live`) is promoted at
once, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from mlplatform.ingest.lake import Lake
from mlplatform.model.deployment import PREDICTIONS
from mlplatform.model.tracking import CHAMPION, REGISTERED_MODEL, SHADOW, client, version_for_alias
from mlplatform.state import StatePaths

SHADOW_PREDICTIONS = "shadow_predictions"
SINCE_TAG = "shadow_since"


@dataclass(frozen=True)
class ShadowResults:
    version: int
    days: list[str]  # the labeled days both the shadow and the champion scored
    flights: int
    shadow_roc_auc: float | None
    champion_roc_auc: float | None


def current(paths: StatePaths):
    """The model version in shadow, or None."""
    return version_for_alias(paths, SHADOW)


def start(paths: StatePaths, version: str) -> None:
    tracker = client(paths)
    tracker.set_model_version_tag(REGISTERED_MODEL, version, SINCE_TAG, datetime.now(timezone.utc).isoformat())
    tracker.set_registered_model_alias(REGISTERED_MODEL, SHADOW, version)


def end(paths: StatePaths, version: str, outcome: str) -> None:
    """The shadow run is over (`promoted` or `retired`): the alias goes, the outcome stays as a tag."""
    tracker = client(paths)
    tracker.set_model_version_tag(REGISTERED_MODEL, version, "shadow_outcome", outcome)
    if (held := current(paths)) is not None and held.version == version:
        tracker.delete_registered_model_alias(REGISTERED_MODEL, SHADOW)


def scored_days(exports: Lake, version: int) -> list[str]:
    """The labeled days the shadow `version` scored beside the champion: what its results cover.
    Reads one small column per day, so the retrain sensor can ask each tick."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlplatform.features.training import ENTITY_TABLE

    days = []
    for day in exports.days(SHADOW_PREDICTIONS):
        if not (exports.path(PREDICTIONS, day).exists() and exports.path(ENTITY_TABLE, day).exists()):
            continue  # the champion's scores or the outcomes of the day are missing
        versions = pq.read_table(exports.path(SHADOW_PREDICTIONS, day), columns=["model_version"])["model_version"]
        if pc.any(pc.equal(versions, version)).as_py():
            days.append(day)
    return days


def results(exports: Lake, version: int) -> ShadowResults:
    """The shadow's and the champion's realized ROC AUC on the same flights: every labeled day the
    shadow scored, each flight with the champion's score of that day."""
    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.service import PREDICTION_KEY, LABEL
    from mlplatform.features.training import ENTITY_TABLE
    from mlplatform.ml.evaluate import metrics

    frames, days = [], scored_days(exports, version)
    for day in days:
        shadow = pq.read_table(exports.path(SHADOW_PREDICTIONS, day), columns=[PREDICTION_KEY, "delay_probability",
                                                                              "model_version"]).to_pandas()
        shadow = shadow[shadow["model_version"] == version]
        champion = pq.read_table(exports.path(PREDICTIONS, day), columns=[PREDICTION_KEY, "delay_probability"]).to_pandas()
        labels = pq.read_table(exports.path(ENTITY_TABLE, day), columns=[PREDICTION_KEY, LABEL]).to_pandas()
        frames.append(shadow[[PREDICTION_KEY, "delay_probability"]].rename(columns={"delay_probability": "shadow"})
                      .merge(champion.rename(columns={"delay_probability": "champion"}), on=PREDICTION_KEY)
                      .merge(labels, on=PREDICTION_KEY))
    joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if joined.empty or joined[LABEL].nunique() < 2:
        return ShadowResults(version, days, len(joined), None, None)
    label = joined[LABEL].astype(bool).to_numpy()
    return ShadowResults(version, days, len(joined), metrics(label, joined["shadow"].to_numpy())["roc_auc"],
                         metrics(label, joined["champion"].to_numpy())["roc_auc"])


def verdict(found: ShadowResults, shadow_days: int, tolerance: float) -> tuple[str, str]:
    """("wait" | "promote" | "retire", why)."""
    if len(found.days) < shadow_days or found.shadow_roc_auc is None:
        return "wait", f"in shadow: {len(found.days)} of {shadow_days} scored day(s)"
    figures = (f"on {found.flights} flights of {len(found.days)} day(s) ({found.days[0]} .. {found.days[-1]}): "
               f"ROC AUC {found.shadow_roc_auc:.4f} against the champion's {found.champion_roc_auc:.4f}")
    if found.shadow_roc_auc >= found.champion_roc_auc - tolerance:
        return "promote", f"the shadow held up {figures} (tolerance {tolerance})"
    return "retire", f"the shadow fell short {figures} (tolerance {tolerance})"


def ready(paths: StatePaths, exports: Lake, shadow_days: int) -> ShadowResults | None:
    """The shadow's results once it has its N days (the cue to run `deployed_model`), else None."""
    held = current(paths) if shadow_days > 0 else None
    if held is None or version_for_alias(paths, CHAMPION) is None:
        return None
    # Counting the days is cheap; the figures are computed once there are enough of them.
    if len(scored_days(exports, int(held.version))) < shadow_days:
        return None
    return results(exports, int(held.version))
