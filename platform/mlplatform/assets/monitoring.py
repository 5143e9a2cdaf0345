"""Monitoring: how far the newest days drifted from the training set, and how the champion did on
them once their outcomes were known. The retrain sensor reads these assets' metadata.

Both are daily and also run over a range of days (a catch-up run): the figures then cover the range.
"""

import dagster as dg

from mlplatform.assets.deployed import PREDICTIONS, batch_predictions
from mlplatform.assets.features import DAILY_FEATURE_TABLES, REFERENCE_FEATURE_TABLES
from mlplatform.partitions import daily_partitions
from mlplatform.resources import PlatformState, RetrainPolicy

GROUP = "monitoring"
TRAILING_DAYS = 7


@dg.asset(
    group_name=GROUP,
    kinds={"feast", "python"},
    partitions_def=daily_partitions,
    deps=["training_set", "fct_flights", *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES],
    description="Population stability index of every model input on the day's flights (features as of "
                "each departure, through Feast) against the latest training set. Metadata: the largest "
                "PSI, the features over the retrain policy's threshold, all values, and a plot.",
)
def feature_drift(context: dg.AssetExecutionContext, state: PlatformState,
                  retrain_policy: RetrainPolicy) -> dg.MaterializeResult:
    from pathlib import Path

    from mlplatform.features.repo import open_store
    from mlplatform.features.service import SERVICE_NAME
    from mlplatform.features.training import TrainingWindowError, labeled_flights, latest_manifest, retrieve
    from mlplatform.ml.columns import with_derived
    from mlplatform.ml.drift import psi_by_feature, training_set_profile
    from mlplatform.model.plots import markdown_image, psi_bars

    paths = state.paths.activate()
    days = context.partition_keys
    manifest = latest_manifest(paths.training_sets)
    if manifest is None:
        raise dg.Failure("no training set yet to compare with: materialize `training_set` first", allow_retries=False)
    try:
        flights, _ = labeled_flights(state.exports, days[0], days[-1])
    except TrainingWindowError:
        raise dg.Failure(f"no flights built for {days[0]} .. {days[-1]}: materialize the dbt models first",
                         allow_retries=False) from None
    # Fitted with the training set; read here so a day's drift costs the same whatever its size.
    profile = training_set_profile(Path(manifest["path"]))
    current = with_derived(retrieve(open_store(paths), flights, SERVICE_NAME))
    values = psi_by_feature(profile, current)
    threshold = retrain_policy.psi_threshold
    drifted = [name for name, value in values.items() if value > threshold]
    context.log.info(f"largest PSI {max(values.values()):.3f}; over {threshold}: {drifted or 'none'}")
    return dg.MaterializeResult(metadata={
        "days": f"{days[0]} .. {days[-1]}",
        "flights": len(current),
        "training_set_content_hash": manifest["content_hash"],
        "max_psi": round(max(values.values()), 4),
        "psi_threshold": threshold,
        "drifted_features": drifted,
        "psi": dg.MetadataValue.json({k: round(v, 4) for k, v in values.items()}),
        "plot": dg.MetadataValue.md(markdown_image(psi_bars(values, threshold), "PSI by feature")),
    })


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    partitions_def=daily_partitions,
    deps=[batch_predictions],
    description="The champion on the newly labeled day: ROC AUC, log loss, predicted vs realized delay "
                f"rate of the day's batch predictions, the same over the trailing {TRAILING_DAYS} days, "
                "and the drop from the AUC the champion had at its evaluation.",
)
def live_performance(context: dg.AssetExecutionContext, state: PlatformState) -> dg.MaterializeResult:
    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.service import FLIGHT_KEY, LABEL
    from mlplatform.features.training import ENTITY_TABLE
    from mlplatform.ml.evaluate import metrics
    from mlplatform.model.deployment import served_champion
    from mlplatform.model.plots import markdown_image, rates_by_day

    days = context.partition_keys
    last = days[-1]
    scored_days = [d for d in state.exports.days(PREDICTIONS) if d <= last][-max(TRAILING_DAYS, len(days)):]

    def scored(day: str) -> pd.DataFrame:
        predictions = pq.read_table(state.exports.path(PREDICTIONS, day),
                                    columns=[FLIGHT_KEY, "delay_probability", "model_version"]).to_pandas()
        labels = pq.read_table(state.exports.path(ENTITY_TABLE, day), columns=[FLIGHT_KEY, LABEL]).to_pandas()
        return predictions.merge(labels.dropna(), on=FLIGHT_KEY).assign(day=day)

    missing = [d for d in days if d not in scored_days]
    if missing:
        raise dg.Failure(f"no batch predictions for {missing}: materialize `batch_predictions` first",
                         allow_retries=False)
    frame = pd.concat([scored(d) for d in scored_days], ignore_index=True)
    window, trailing = frame[frame["day"].isin(days)], frame
    if window[LABEL].nunique() < 2:
        raise dg.Failure(f"{days[0]} .. {last} is not labeled with both outcomes yet", allow_retries=False)
    now = metrics(window[LABEL].to_numpy(), window["delay_probability"].to_numpy())
    over = metrics(trailing[LABEL].to_numpy(), trailing["delay_probability"].to_numpy())
    champion = served_champion(state.paths) or {}
    evaluated = champion.get("holdout", {}).get("roc_auc")
    by_day = trailing.groupby("day").agg(predicted=("delay_probability", "mean"), realized=(LABEL, "mean"))
    return dg.MaterializeResult(metadata={
        "days": f"{days[0]} .. {last}",
        "flights": now["rows"],
        "roc_auc": round(now["roc_auc"], 4),
        "log_loss": round(now["log_loss"], 4),
        "predicted_delay_rate": round(now["predicted_rate"], 4),
        "realized_delay_rate": round(now["realized_rate"], 4),
        "trailing_days": f"{scored_days[0]} .. {last}",
        "trailing_roc_auc": round(over["roc_auc"], 4),
        "model_versions": sorted(int(v) for v in window["model_version"].unique()),
        "champion_version": champion.get("version", "none"),
        "champion_evaluation_roc_auc": round(evaluated, 4) if evaluated is not None else "none",
        "auc_drop": round(evaluated - over["roc_auc"], 4) if evaluated is not None else "none",
        "plot": dg.MetadataValue.md(markdown_image(
            rates_by_day(list(by_day.index), by_day["predicted"].tolist(), by_day["realized"].tolist()),
            "Predicted vs realized delay rate")),
    })


monitoring_assets = [feature_drift, live_performance]
