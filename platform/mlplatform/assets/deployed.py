"""Deployed stage, batch side: each day's scheduled flights scored by the champion.

The champion itself (`deployed_model`) lives with the model stage's assets; the online API is
`mlplatform serve`.
"""

import dagster as dg

from mlplatform.assets.features import DAILY_FEATURE_TABLES, REFERENCE_FEATURE_TABLES
from mlplatform.features.training import ENTITY_TABLE
from mlplatform.model.deployment import PREDICTIONS
from mlplatform.partitions import daily_partitions
from mlplatform.resources import PlatformState
from mlplatform.warehouse.backends import open_warehouse


@dg.asset(
    group_name="deployed",
    kinds={"pytorch", "duckdb"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=["deployed_model", ENTITY_TABLE, *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES],
    pool="warehouse",
    description="The day's scheduled flights scored by the champion with point-in-time features (through "
                "Feast), written to the warehouse table `predictions` with the model version (and exported "
                "as Parquet). Metadata: the predicted delay rate and, once the day is labeled, the realized AUC. "
                "A challenger in shadow (model_spec.shadow_days) scores them too, into the export "
                "`shadow_predictions`.",
)
def batch_predictions(context: dg.AssetExecutionContext, state: PlatformState) -> dg.MaterializeResult:
    from datetime import datetime, timezone

    import mlflow
    import numpy as np
    import pyarrow as pa

    from mlplatform.features.repo import open_store
    from mlplatform.features.service import PREDICTION_KEY, JOIN_KEYS, LABEL, REQUEST_TIMESTAMP, SERVICE_NAME
    from mlplatform.features.training import TrainingWindowError, labeled_flights, retrieve
    from mlplatform.ml.evaluate import metrics
    from mlplatform.model.shadow import SHADOW_PREDICTIONS, current as current_shadow
    from mlplatform.model.tracking import CHAMPION, REGISTERED_MODEL, client, version_for_alias

    paths = state.paths.activate()
    client(paths)  # points MLflow at this state directory
    champion = version_for_alias(paths, CHAMPION)
    if champion is None:
        raise dg.Failure("no champion deployed yet: materialize `deployed_model` first", allow_retries=False)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{champion.version}")
    # A challenger in shadow scores the same flights, kept apart (model/shadow.py).
    shadow = current_shadow(paths)
    shadow_model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{shadow.version}") if shadow else None
    store = open_store(paths)
    warehouse = open_warehouse(paths)
    scored_days, labels = [], []
    for day in context.partition_keys:  # one day, or each day of a catch-up run
        try:
            flights, _ = labeled_flights(state.exports, day, day)
        except TrainingWindowError:
            raise dg.Failure(f"no flights built for {day}: materialize the day's dbt models first",
                             allow_retries=False) from None
        frame = retrieve(store, flights, SERVICE_NAME)
        scored = frame[[PREDICTION_KEY, REQUEST_TIMESTAMP, *JOIN_KEYS]].copy()
        scored["delay_probability"] = model.predict(frame).astype("float64")
        scored["model_version"] = int(champion.version)
        scored["flight_date"] = datetime.fromisoformat(day).date()
        scored["scored_at"] = datetime.now(timezone.utc)
        table = pa.Table.from_pandas(scored, preserve_index=False)
        with warehouse.writer(on_wait=context.log.info):
            warehouse.replace_day(PREDICTIONS, "flight_date", scored["flight_date"].iloc[0], table)
        state.exports.write(PREDICTIONS, table, day)
        if shadow_model is not None:
            shadowed = scored.assign(delay_probability=shadow_model.predict(frame).astype("float64"),
                                     model_version=int(shadow.version))
            state.exports.write(SHADOW_PREDICTIONS, pa.Table.from_pandas(shadowed, preserve_index=False), day)
        scored_days.append(scored)
        labels.append(frame[LABEL])

    probability = np.concatenate([s["delay_probability"].to_numpy() for s in scored_days])
    label = np.concatenate([lab.astype(bool).to_numpy() for lab in labels])
    realized = metrics(label, probability) if 0 < label.sum() < len(label) else None
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(probability), "model_version": int(champion.version),
        "shadow_version": int(shadow.version) if shadow else "none",
        "predicted_delay_rate": round(float(probability.mean()), 4),
        "realized_delay_rate": round(float(label.mean()), 4) if len(label) else "none",
        "realized_roc_auc": round(realized["roc_auc"], 4) if realized else "not labeled yet",
    })


deployed_assets = [batch_predictions]
