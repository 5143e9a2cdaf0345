"""The jobs the sensors (and `mlplatform pipeline`) run: one per step of the data's way through.

    raw_daily          a landed day's files into the lake                   (landing sensor)
    raw_reference      landed reference tables into the lake                (landing sensor)
    reference_refresh  dbt's reference models and the Feast definitions     (downstream sensor)
    daily_refresh      dbt's daily models, online features, monitoring and
                       batch predictions, for a day or a range of days      (downstream sensor)
    retrain            training set, model, evaluation gate, promotion      (retrain sensor)

All run in one process (no process per step): their steps are short and run one after another,
and on a laptop a process start costs more than most steps.
"""

import dagster as dg

from mlplatform.domain import DAILY_TABLES, REFERENCE_TABLES
from mlplatform.partitions import daily_partitions

RAW_DAILY = [dg.AssetKey(f"raw_{t}") for t in DAILY_TABLES]
RAW_REFERENCE = [dg.AssetKey(f"raw_{t}") for t in REFERENCE_TABLES]
REFERENCE_MODELS = ["dim_airports", "dim_carriers", "dim_planes", "feat_plane", "stg_airports", "stg_carriers",
                    "stg_planes", "us_federal_holidays"]
DAILY_MODELS = ["stg_flights", "stg_weather", "int_flight_outcomes_daily", "fct_flights", "feat_flight_calendar",
                "feat_origin_weather", "feat_route_delay_stats", "feat_carrier_delay_stats",
                "feat_origin_delay_stats", "feat_origin_congestion"]
ONLINE = ["online_features"]
DRIFT = ["feature_drift"]  # needs a training set
SCORING = ["batch_predictions", "live_performance"]  # need a champion
RETRAIN = ["training_set", "delay_model", "model_evaluation", "deployed_model"]

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def keys(names: list[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(n) for n in names]


def _job(name: str, selection: list[dg.AssetKey], description: str, partitioned: bool = False):
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(*selection), description=description,
                               partitions_def=daily_partitions if partitioned else None,
                               executor_def=dg.in_process_executor)


raw_daily_job = _job("raw_daily", RAW_DAILY, "A landed day's files, checked and written to the lake.", True)
raw_reference_job = _job("raw_reference", RAW_REFERENCE, "Landed reference tables, checked and written to the lake.")
reference_refresh_job = _job("reference_refresh", keys(REFERENCE_MODELS) + [dg.AssetKey("feature_definitions")],
                             "dbt's reference models and `feast apply` (when the definitions changed).")
daily_refresh_job = _job("daily_refresh", keys(DAILY_MODELS + ONLINE + DRIFT + SCORING),
                         "A day (or a range of days) through dbt, the online store, monitoring and "
                         "batch predictions.", True)
retrain_job = _job("retrain", keys(RETRAIN), "Training set, model, evaluation gate and promotion.")

jobs = [raw_daily_job, raw_reference_job, reference_refresh_job, daily_refresh_job, retrain_job]
