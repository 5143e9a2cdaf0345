"""Deployed stage, batch side: each day's prediction rows scored by the champion.

The champion itself (`deployed_model`) lives with the model stage's assets; the online API is
`mlplatform serve`.
"""

import dagster as dg

from mlplatform.assets.features import DAILY_FEATURE_TABLES, REFERENCE_FEATURE_TABLES
from mlplatform.usecases import active, named
from mlplatform.model.deployment import PREDICTIONS
from mlplatform.partitions import daily_partitions
from mlplatform.resources import PlatformState


@dg.asset(
    name=named("batch_predictions"),
    group_name="deployed",
    kinds={"pytorch", "duckdb"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=[named("deployed_model"), active().prediction.model, *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES],
    pool="warehouse",
    description="The day's rows of the prediction grain scored by the champion with point-in-time features "
                "(through Feast), written to the warehouse table `predictions` with the model version (and exported "
                "as Parquet). Metadata: the mean prediction and, once the day's outcomes are known, the realized "
                "metric. A challenger in shadow (model_spec.shadow_days) scores them too, into the export "
                "`shadow_predictions`.",
)
def batch_predictions(context: dg.AssetExecutionContext, state: PlatformState) -> dg.MaterializeResult:
    from datetime import datetime, timezone

    import mlflow
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from mlplatform.features.repo import open_store
    from mlplatform.features.service import PREDICTION_KEY, JOIN_KEYS, LABEL, REQUEST_TIMESTAMP, SERVICE_NAME
    from mlplatform.features.training import TrainingWindowError, matured_days, prediction_rows, retrieve
    from mlplatform.ml.task import BINARY, metrics
    from mlplatform.model.shadow import SHADOW_PREDICTIONS, current as current_shadow
    from mlplatform.model.tracking import CHAMPION, REGISTERED_MODEL, client, version_for_alias
    from mlplatform.warehouse.backends import open_warehouse

    use_case = active()
    output, task = use_case.prediction.output, use_case.task
    paths = state.paths.activate()
    client(paths)  # points MLflow at this state directory
    champion = version_for_alias(paths, CHAMPION)
    if champion is None:
        raise dg.Failure("no champion deployed yet: materialize `deployed_model` first", allow_retries=False)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{champion.version}")
    # A challenger in shadow scores the same rows, kept apart (model/shadow.py).
    shadow = current_shadow(paths)
    shadow_model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{shadow.version}") if shadow else None
    store = open_store(paths)
    warehouse = open_warehouse(paths)
    # Outcomes are read only for days whose outcomes are known (the use case's label_delay_days).
    known = set(matured_days(state.exports.days(use_case.prediction.model)))
    scored_days, labels = [], []
    for day in context.partition_keys:  # one day, or each day of a catch-up run
        try:
            rows = prediction_rows(state.exports, day, day)
        except TrainingWindowError:
            raise dg.Failure(f"nothing built for {day}: materialize the day's dbt models first",
                             allow_retries=False) from None
        frame = retrieve(store, rows, SERVICE_NAME)
        scored = frame[[PREDICTION_KEY, REQUEST_TIMESTAMP, *JOIN_KEYS]].copy()
        scored[output] = model.predict(frame).astype("float64")
        scored["model_version"] = int(champion.version)
        scored["prediction_date"] = datetime.fromisoformat(day).date()
        scored["scored_at"] = datetime.now(timezone.utc)
        table = pa.Table.from_pandas(scored, preserve_index=False)
        with warehouse.writer(on_wait=context.log.info):
            warehouse.replace_day(PREDICTIONS, "prediction_date", scored["prediction_date"].iloc[0], table)
        state.exports.write(PREDICTIONS, table, day)
        if shadow_model is not None:
            shadowed = scored.assign(**{output: shadow_model.predict(frame).astype("float64"),
                                        "model_version": int(shadow.version)})
            state.exports.write(SHADOW_PREDICTIONS, pa.Table.from_pandas(shadowed, preserve_index=False), day)
        scored_days.append(scored)
        labels.append(frame[LABEL] if day in known else pd.Series(np.nan, index=frame.index))

    predicted = np.concatenate([s[output].to_numpy() for s in scored_days])
    label = pd.concat(labels, ignore_index=True)
    labeled = label.notna().to_numpy()
    figures = {"dagster/row_count": len(predicted), "model_version": int(champion.version),
               "shadow_version": int(shadow.version) if shadow else "none",
               f"mean_{output}": round(float(predicted.mean()), 4) if len(predicted) else "none"}
    outcomes = label[labeled].to_numpy()
    if task.kind == BINARY:
        outcomes = outcomes.astype(bool)
        realized = metrics(task.kind, outcomes, predicted[labeled]) if 0 < outcomes.sum() < len(outcomes) else None
        figures |= {"realized_rate": round(float(outcomes.mean()), 4) if len(outcomes) else "none"}
    else:
        realized = metrics(task.kind, outcomes.astype(float), predicted[labeled]) if len(outcomes) > 1 else None
    figures[f"realized_{task.metric}"] = round(realized[task.metric], 4) if realized else "not labeled yet"
    return dg.MaterializeResult(metadata=figures)


deployed_assets = [batch_predictions]
