"""Shadow deployment: a challenger that passed its offline gate first scores beside the champion.

With `model_spec.shadow_days` = N > 0 and a champion in place, `deployed_model` does not promote a
gated challenger at once: it gives it the registry alias `shadow`. From then on `batch_predictions`
scores each day's rows with it too (the export `shadow_predictions`, beside the champion's
`predictions`), and the API scores every day-ahead request with it in the prediction log's writing
thread (rows with the endpoint suffixed ` (shadow)`): logged, never returned, and off the request's
path. Once N scored days have their outcomes (the use case's `label_delay_days` after them), the
retrain sensor (or `mlplatform pipeline`) runs `deployed_model` again, which promotes the shadow if
its realized figure on the use case's metric, on those days' rows, is no worse than the champion's on
the same rows (within the gate's tolerance), and retires it otherwise. A newer gated challenger replaces the one in shadow. The first champion never waits: with
no champion there is nothing to compare with. The live model (the use case's same-day line) is promoted at
once, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from mlplatform.ingest.lake import Lake
from mlplatform.model.deployment import PREDICTIONS
from mlplatform.model.tracking import CHAMPION, REGISTERED_MODEL, SHADOW, client, version_for_alias
from mlplatform.state import StatePaths
from mlplatform.usecases import named

SHADOW_PREDICTIONS = named("shadow_predictions")
SINCE_TAG = "shadow_since"


@dataclass(frozen=True)
class ShadowResults:
    version: int
    days: list[str]  # the days with known outcomes that both the shadow and the champion scored
    rows: int  # the rows judged
    shadow_metric: float | None
    champion_metric: float | None
    metric: str = "roc_auc"


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

    from mlplatform.features.training import ENTITY_TABLE, matured_days

    matured = set(matured_days(exports.days(ENTITY_TABLE)))  # outcomes known: label_delay_days later
    days = []
    for day in exports.days(SHADOW_PREDICTIONS):
        if day not in matured or not exports.path(PREDICTIONS, day).exists():
            continue  # the champion's scores or the outcomes of the day are missing
        versions = pq.read_table(exports.path(SHADOW_PREDICTIONS, day), columns=["model_version"])["model_version"]
        if pc.any(pc.equal(versions, version)).as_py():
            days.append(day)
    return days


def results(exports: Lake, version: int) -> ShadowResults:
    """The shadow's and the champion's realized figures on the use case's metric, on the same rows:
    every day with known outcomes the shadow scored, each row with the champion's score of that day."""
    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.service import PREDICTION_KEY, LABEL
    from mlplatform.features.training import ENTITY_TABLE
    from mlplatform.ml.task import BINARY, metrics
    from mlplatform.usecases import active

    task, output = active().task, active().prediction.output
    frames, days = [], scored_days(exports, version)
    for day in days:
        shadow = pq.read_table(exports.path(SHADOW_PREDICTIONS, day), columns=[PREDICTION_KEY, output,
                                                                              "model_version"]).to_pandas()
        shadow = shadow[shadow["model_version"] == version]
        champion = pq.read_table(exports.path(PREDICTIONS, day), columns=[PREDICTION_KEY, output]).to_pandas()
        labels = pq.read_table(exports.path(ENTITY_TABLE, day), columns=[PREDICTION_KEY, LABEL]).to_pandas()
        frames.append(shadow[[PREDICTION_KEY, output]].rename(columns={output: "shadow"})
                      .merge(champion.rename(columns={output: "champion"}), on=PREDICTION_KEY)
                      .merge(labels.dropna(), on=PREDICTION_KEY))
    joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if joined.empty or (task.kind == BINARY and joined[LABEL].nunique() < 2):
        return ShadowResults(version, days, len(joined), None, None, task.metric)
    label = joined[LABEL].to_numpy(float)
    return ShadowResults(version, days, len(joined), metrics(task.kind, label, joined["shadow"].to_numpy())[task.metric],
                         metrics(task.kind, label, joined["champion"].to_numpy())[task.metric], task.metric)


def verdict(found: ShadowResults, shadow_days: int, tolerance: float) -> tuple[str, str]:
    """("wait" | "promote" | "retire", why): the shadow is promoted when it is at most `tolerance`
    worse than the champion on the metric, in the metric's direction."""
    from mlplatform.ml.gate import _name
    from mlplatform.ml.task import drop

    if len(found.days) < shadow_days or found.shadow_metric is None:
        return "wait", f"in shadow: {len(found.days)} of {shadow_days} scored day(s)"
    figures = (f"on {found.rows} rows of {len(found.days)} day(s) ({found.days[0]} .. {found.days[-1]}): "
               f"{_name(found.metric)} {found.shadow_metric:.4f} against the champion's {found.champion_metric:.4f}")
    if drop(found.metric, found.champion_metric, found.shadow_metric) <= tolerance:
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
