"""The jobs the sensors (and `mlplatform pipeline`) run: one per step of the data's way through.

    raw_daily          a landed day's files into the lake                   (landing sensor)
    raw_reference      landed reference tables into the lake                (landing sensor)
    reference_refresh  dbt's reference models and the Feast definitions     (downstream sensor)
    daily_refresh      dbt's daily models, online features, monitoring and
                       batch predictions, for a day or a range of days      (downstream sensor)
    retrain            training set, model, evaluation gate, promotion      (retrain sensor)

Each name is in the use case's namespace (`<namespace>_daily_refresh`; the bare name in the empty
one), as are the names of the assets they select.

On the embedded default all run in one process (no process per step): their steps are short and run
one after another, and on a laptop a process start costs more than most steps. On the production
profile their steps go to Celery workers (mlplatform/profile.py).
"""

import dagster as dg

from mlplatform.assets.transformed import dbt_daily_models, dbt_reference_models
from mlplatform.automation.progress import RAW_DAILY_ASSETS
from mlplatform.usecases import active, named
from mlplatform.model.lines import LINES
from mlplatform.profile import current as current_profile

RAW_REFERENCE = [dg.AssetKey(f"raw_{t}") for t in active().reference_tables]
# dbt's models, as the dbt assets name them (read from the manifest, never parsed here).
REFERENCE_MODELS = sorted(k.to_user_string() for k in dbt_reference_models.keys) if dbt_reference_models else []
DAILY_MODELS = sorted(k.to_user_string() for k in dbt_daily_models.keys)
# The same-day stream's asset, where the use case has a stream.
ONLINE = [named("online_features"), *([named("same_day_stream")] if active().features.same_day_service else [])]
DRIFT = [named("feature_drift")]  # needs a training set
SCORING = [named("batch_predictions"), named("live_performance")]  # need a champion
FEATURE_DEFINITIONS = named("feature_definitions")
# The model lines' assets, each line's names after its prefix (model/lines.py).
MODEL_STEPS = ["training_set", "trained_model", "model_evaluation", "deployed_model"]
# The live model (model/lines.py): its own job, requested with each retrain when it is on.
LIVE_LINE = next((line for line in LINES if line.same_day), None)
RETRAIN = [LINES[0].key(name) for name in MODEL_STEPS]
RETRAIN_LIVE = [LIVE_LINE.key(name) for name in MODEL_STEPS] if LIVE_LINE else []

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def run_target(tags: dict[str, str]) -> str | None:
    """The partition a run covers, or its range as `first..last`, from the run's tags."""
    if RANGE_START in tags:
        return f"{tags[RANGE_START]}..{tags[RANGE_END]}"
    return tags.get("dagster/partition")


def keys(names: list[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(n) for n in names]


def _job(name: str, selection: list[dg.AssetKey], description: str):
    # Partitioned or not follows from the selected assets; where the steps run, from the profile.
    return dg.define_asset_job(named(name), selection=dg.AssetSelection.assets(*selection), description=description,
                               executor_def=current_profile().executor())


raw_daily_job = _job("raw_daily", keys(RAW_DAILY_ASSETS), "A landed day's files, checked and written to the lake.")
# A use case without reference tables has no such job.
raw_reference_job = (_job("raw_reference", RAW_REFERENCE, "Landed reference tables, checked and written to the lake.")
                     if RAW_REFERENCE else None)
reference_refresh_job = _job("reference_refresh", keys(REFERENCE_MODELS) + [dg.AssetKey(FEATURE_DEFINITIONS)],
                             "dbt's reference models and `feast apply` (when the definitions changed).")
daily_refresh_job = _job("daily_refresh", keys(DAILY_MODELS + ONLINE + DRIFT + SCORING),
                         "A day (or a range of days) through dbt, the online store, monitoring and "
                         "batch predictions.")
retrain_job = _job("retrain", keys(RETRAIN), "Training set, model, evaluation gate and promotion.")
retrain_live_job = (_job("retrain_live", keys(RETRAIN_LIVE), "The live model (same-day features): training set, "
                         "model, evaluation gate and promotion.") if RETRAIN_LIVE else None)

# A challenger in shadow whose days are in: promoted or retired (model/shadow.py).
shadow_decision_job = _job("shadow_decision", keys([LINES[0].key("deployed_model")]), "The shadow challenger's days are in: "
                           "`deployed_model` promotes it if it held up against the champion, or retires it.")

jobs = [job for job in (raw_daily_job, raw_reference_job, reference_refresh_job, daily_refresh_job, retrain_job,
                        retrain_live_job, shadow_decision_job) if job is not None]
