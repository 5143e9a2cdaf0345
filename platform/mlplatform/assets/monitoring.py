"""Monitoring: how far the newest days drifted from the training set, and how the champion did on
them once their outcomes were known. The retrain sensor reads these assets' metadata.

Both are daily and also run over a range of days (a catch-up run): the figures then cover the range.
"""

import dagster as dg

from mlplatform.assets.deployed import PREDICTIONS, batch_predictions
from mlplatform.assets.features import DAILY_FEATURE_TABLES, REFERENCE_FEATURE_TABLES
from mlplatform.assets.ui import table
from mlplatform.partitions import daily_partitions
from mlplatform.resources import ModelSpec, PlatformState, RetrainPolicy
from mlplatform.usecases import active, named

GROUP = "monitoring"
OUTPUT = active().prediction.output  # the predictions' column
TRAILING_DAYS = 7
# live_performance's checks: an ERROR below the floor every challenger must reach (it alerts), a
# WARN when the champion fell further below its own evaluation than the retrain policy allows.
ABOVE_FLOOR, HOLDS_AUC = "champion_above_floor", "champion_holds_its_auc"
# feature_drift's check: a WARN when an input of the prediction mix drifted past the threshold.
INPUTS_STABLE = "input_mix_stable"


def _check_specs(asset: str, specs: dict[str, str]) -> list[dg.AssetCheckSpec]:
    import warnings

    with warnings.catch_warnings():
        # Partition-aware check results (a check status per day) are a Dagster preview feature.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [dg.AssetCheckSpec(name, asset=asset, partitions_def=daily_partitions, description=description)
                for name, description in specs.items()]


@dg.asset(
    name=named("feature_drift"),
    group_name=GROUP,
    kinds={"feast", "python"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=[named("training_set"), active().prediction.model, *DAILY_FEATURE_TABLES, *REFERENCE_FEATURE_TABLES],
    description=f"Population stability index of every model input on the prediction rows of the {TRAILING_DAYS} days "
                "ending on the day (features as of each row's request time, through Feast) against the latest training set. Drift is judged on the "
                "mix of what is predicted (the spec's inputs that are not `conditions`); the conditions (spec "
                "delay statistics) move every week by construction and are shown apart. Metadata: the "
                "largest PSI, the inputs over the retrain policy's threshold, and a table of every input's PSI, largest first.",
    check_specs=_check_specs(named("feature_drift"), {
        INPUTS_STABLE: "WARN when an input of the prediction mix drifted past retrain_policy.psi_threshold "
                       "(calibrated on the replayed year: docs/drift_calibration.md)."}),
)
def feature_drift(context: dg.AssetExecutionContext, state: PlatformState,
                  retrain_policy: RetrainPolicy) -> dg.MaterializeResult:
    from datetime import date, timedelta
    from pathlib import Path

    from mlplatform.features.repo import open_store
    from mlplatform.features.service import SERVICE_NAME
    from mlplatform.features.training import TrainingWindowError, latest_manifest, prediction_rows, retrieve
    from mlplatform.ml.columns import is_condition, with_derived
    from mlplatform.ml.drift import psi_by_feature, training_set_profile

    paths = state.paths.activate()
    days = context.partition_keys
    manifest = latest_manifest(paths.training_sets)
    if manifest is None:
        raise dg.Failure("no training set yet to compare with: materialize `training_set` first", allow_retries=False)
    # A day's mix of a categorical input is a handful of values; a trailing week is a population
    # (docs/drift_calibration.md): the window is the week ending on the last day, or the range if longer.
    first = min(days[0], str(date.fromisoformat(days[-1]) - timedelta(days=TRAILING_DAYS - 1)))
    try:
        rows = prediction_rows(state.exports, first, days[-1])
        read = rows.attrs["days"]
    except TrainingWindowError:
        raise dg.Failure(f"no prediction rows built for {days[0]} .. {days[-1]}: materialize the dbt models first",
                         allow_retries=False) from None
    # Fitted with the training set; read here so a day's drift costs the same whatever its size.
    profile = training_set_profile(Path(manifest["path"]))
    current = with_derived(retrieve(open_store(paths), rows, SERVICE_NAME))
    values = psi_by_feature(profile, current)
    threshold = retrain_policy.psi_threshold
    # The prediction mix (inputs that are not conditions) is what drifts; the conditions move every week by construction (is_condition).
    population = {name: value for name, value in values.items() if not is_condition(name)}
    conditions = {name: value for name, value in values.items() if is_condition(name)}
    drifted = [name for name, value in population.items() if value > threshold]
    largest = max(population.values(), default=0.0)
    context.log.info(f"largest PSI of the prediction mix {largest:.3f}; over {threshold}: {drifted or 'none'}")
    stable = dg.AssetCheckResult(
        check_name=INPUTS_STABLE, passed=not drifted, severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(drifted)} input(s) of the prediction mix over PSI {threshold}" + (f": {', '.join(drifted)}"
                                                                                       if drifted else ""),
        metadata={"drifted_features": drifted, "max_psi": round(largest, 4), "psi_threshold": threshold})
    return dg.MaterializeResult(check_results=[stable], metadata={
        "days": f"{days[0]} .. {days[-1]}",
        "window": f"{read[0]} .. {read[-1]}",
        "rows": len(current),
        "training_set_content_hash": manifest["content_hash"],
        "max_psi": round(largest, 4),
        "psi_threshold": threshold,
        "drifted_features": drifted,
        "conditions_max_psi": round(max(conditions.values(), default=0.0), 4),
        # Largest first: the inputs that moved most head the table.
        "psi": _psi_table(population, threshold),
        "conditions_psi": _psi_table(conditions, threshold),
    })


def _psi_table(values: dict[str, float], threshold: float) -> dg.MetadataValue:
    return table({"input": name, "psi": value, "over_threshold": value > threshold}
                 for name, value in sorted(values.items(), key=lambda item: -item[1]))


@dg.asset(
    name=named("live_performance"),
    group_name=GROUP,
    kinds={"python"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: each handles several days
    deps=[batch_predictions],
    description="The champion on the newly labeled day: ROC AUC, log loss, predicted vs realized delay "
                f"rate of the day's batch predictions, the same over the trailing {TRAILING_DAYS} days, "
                "and the drop from the AUC the champion had at its evaluation; beside them, the API's logged "
                "answers for the day's rows joined to their outcomes (online_roc_auc).",
    check_specs=_check_specs(named("live_performance"), {
        ABOVE_FLOOR: "ERROR, and an alert, when the champion's trailing realized ROC AUC is below the floor "
                     "every challenger must reach (model_spec.min_first_auc).",
        HOLDS_AUC: "WARN when the champion's trailing realized ROC AUC fell further below its evaluation AUC "
                   "than the retrain policy allows (retrain_policy.auc_drop_margin)."}),
)
def live_performance(context: dg.AssetExecutionContext, state: PlatformState, model_spec: ModelSpec,
                     retrain_policy: RetrainPolicy) -> dg.MaterializeResult:
    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.service import PREDICTION_KEY, LABEL
    from mlplatform.features.training import ENTITY_TABLE
    from mlplatform.ml.evaluate import metrics
    from mlplatform.model.deployment import served_champion

    days = context.partition_keys
    use_case = active()
    if use_case.task.kind != "binary" or use_case.task.metric != "roc_auc" or use_case.prediction.label_delay_days:
        # Judged on the days whose outcomes are known, on the use case's own metric.
        return _matured_performance(state, days, model_spec, retrain_policy)
    last = days[-1]
    scored_days = [d for d in state.exports.days(PREDICTIONS) if d <= last][-max(TRAILING_DAYS, len(days)):]

    def scored(day: str) -> pd.DataFrame:
        predictions = pq.read_table(state.exports.path(PREDICTIONS, day),
                                    columns=[PREDICTION_KEY, OUTPUT, "model_version"]).to_pandas()
        labels = pq.read_table(state.exports.path(ENTITY_TABLE, day), columns=[PREDICTION_KEY, LABEL]).to_pandas()
        return predictions.merge(labels.dropna(), on=PREDICTION_KEY).assign(day=day)

    missing = [d for d in days if d not in scored_days]
    if missing:
        raise dg.Failure(f"no batch predictions for {missing}: materialize `batch_predictions` first",
                         allow_retries=False)
    frame = pd.concat([scored(d) for d in scored_days], ignore_index=True)
    window, trailing = frame[frame["day"].isin(days)], frame
    if window[LABEL].nunique() < 2 or trailing[LABEL].nunique() < 2:
        # An AUC needs both outcomes: a day with only one (a small use case) is reported, not failed.
        why = f"{days[0]} .. {last} does not hold both outcomes yet: no AUC to judge"
        return dg.MaterializeResult(metadata={"days": f"{days[0]} .. {last}", "rows": len(window), "reason": why},
                                    check_results=[dg.AssetCheckResult(check_name=name, passed=True, description=why)
                                                   for name in (ABOVE_FLOOR, HOLDS_AUC)])
    now = metrics(window[LABEL].to_numpy(), window[OUTPUT].to_numpy())
    over = metrics(trailing[LABEL].to_numpy(), trailing[OUTPUT].to_numpy())
    champion = served_champion(state.paths) or {}
    evaluated = champion.get("holdout", {}).get("roc_auc")
    by_day = trailing.groupby("day").agg(predicted=(OUTPUT, "mean"), realized=(LABEL, "mean"))
    checks = _performance_checks(state, over["roc_auc"], evaluated, model_spec, retrain_policy,
                                 f"{scored_days[0]} .. {last}", champion.get("version"))
    online = _logged_answers(state.paths, window[[PREDICTION_KEY, LABEL]])
    return dg.MaterializeResult(check_results=checks, metadata={**online,
        "days": f"{days[0]} .. {last}",
        "rows": now["rows"],
        "roc_auc": round(now["roc_auc"], 4),
        "log_loss": round(now["log_loss"], 4),
        "predicted_rate": round(now["predicted_rate"], 4),
        "realized_rate": round(now["realized_rate"], 4),
        "trailing_days": f"{scored_days[0]} .. {last}",
        "trailing_roc_auc": round(over["roc_auc"], 4),
        "model_versions": sorted(int(v) for v in window["model_version"].unique()),
        "champion_version": champion.get("version", "none"),
        "champion_evaluation_roc_auc": round(evaluated, 4) if evaluated is not None else "none",
        "auc_drop": round(evaluated - over["roc_auc"], 4) if evaluated is not None else "none",
        # Day by day; the Plots tab charts the top-level rates and AUCs run by run.
        "by_day": table({"day": str(day), "predicted_rate": row.predicted, "realized_rate": row.realized}
                        for day, row in by_day.iterrows()),
    })


def _matured_performance(state: PlatformState, days: list[str], model_spec: ModelSpec,
                         policy: RetrainPolicy) -> dg.MaterializeResult:
    """The champion on the days whose outcomes became known with these days (`label_delay_days`
    earlier), on the use case's metric, beside the same over the trailing days and its evaluation's
    figure. Until any outcome is known there is nothing to judge: the checks pass, saying so."""
    from datetime import date, timedelta

    import pandas as pd
    import pyarrow.parquet as pq

    from mlplatform.features.service import LABEL, PREDICTION_KEY
    from mlplatform.features.training import ENTITY_TABLE, matured_days
    from mlplatform.ml.task import HIGHER_IS_BETTER, allowed_drop, metrics
    from mlplatform.ml.task import drop as task_drop
    from mlplatform.model.deployment import served_champion

    use_case = active()
    task, output, delay = use_case.task, use_case.prediction.output, use_case.prediction.label_delay_days
    metric, higher = task.metric, HIGHER_IS_BETTER[task.metric]
    known = set(matured_days(state.exports.days(ENTITY_TABLE), delay))
    shifted = [(date.fromisoformat(d) - timedelta(days=delay)).isoformat() for d in days]
    scored = [d for d in state.exports.days(PREDICTIONS) if d in known and d <= shifted[-1]]
    window = [d for d in scored if shifted[0] <= d]
    trailing = scored[-max(TRAILING_DAYS, len(window)):] if window else []

    def rows(day: str) -> pd.DataFrame:
        predictions = pq.read_table(state.exports.path(PREDICTIONS, day), columns=[PREDICTION_KEY, output]).to_pandas()
        labels = pq.read_table(state.exports.path(ENTITY_TABLE, day), columns=[PREDICTION_KEY, LABEL]).to_pandas()
        return predictions.merge(labels.dropna(), on=PREDICTION_KEY).assign(day=day)

    champion = served_champion(state.paths) or {}
    evaluated = champion.get("holdout", {}).get(metric)
    common = {"days": f"{days[0]} .. {days[-1]}", "metric": metric, "label_delay_days": delay,
              "champion_version": champion.get("version", "none")}
    if not window:
        why = f"no scored day of {shifted[0]} .. {shifted[-1]} has its outcomes known yet"
        return dg.MaterializeResult(metadata={**common, "judged_days": "none", "reason": why}, check_results=[
            dg.AssetCheckResult(check_name=name, passed=True, description=why) for name in (ABOVE_FLOOR, HOLDS_AUC)])
    frame = pd.concat([rows(d) for d in trailing], ignore_index=True)
    now = metrics(task.kind, frame[frame["day"].isin(window)][LABEL].to_numpy(float),
                  frame[frame["day"].isin(window)][output].to_numpy())
    over = metrics(task.kind, frame[LABEL].to_numpy(float), frame[output].to_numpy())
    if over[metric] != over[metric]:  # NaN: an AUC over days of one outcome only
        why = f"the known outcomes of {trailing[0]} .. {trailing[-1]} give no {metric} yet (one outcome only)"
        return dg.MaterializeResult(metadata={**common, "judged_days": "none", "reason": why}, check_results=[
            dg.AssetCheckResult(check_name=name, passed=True, description=why) for name in (ABOVE_FLOOR, HOLDS_AUC)])
    floor = task.min_metric
    above = floor is None or (over[metric] >= floor if higher else over[metric] <= floor)
    drop = task_drop(metric, evaluated, over[metric])
    allowed = allowed_drop(metric, evaluated, task.drop_margin, policy.auc_drop_margin)
    checks = [dg.AssetCheckResult(check_name=ABOVE_FLOOR, passed=bool(above), severity=dg.AssetCheckSeverity.ERROR,
                                  description=f"trailing {metric} {over[metric]:.4f}, floor {floor}"),
              dg.AssetCheckResult(check_name=HOLDS_AUC, passed=drop is None or drop <= allowed,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  description="no evaluated champion" if drop is None else
                                  f"trailing {metric} {over[metric]:.4f}, {drop:.4f} worse than its evaluation's "
                                  f"{evaluated:.4f} (allowed {allowed})",
                                  metadata={"drop": round(drop, 4) if drop is not None else "none", "allowed": allowed})]
    return dg.MaterializeResult(check_results=checks, metadata={
        **common, "judged_days": f"{window[0]} .. {window[-1]}", "rows": now["rows"],
        metric: round(now[metric], 4), f"trailing_{metric}": round(over[metric], 4),
        "mean_predicted": round(now["mean_predicted"], 4), "mean_realized": round(now["mean_realized"], 4),
        "trailing_days": f"{trailing[0]} .. {trailing[-1]}",
        f"champion_evaluation_{metric}": round(evaluated, 4) if evaluated is not None else "none"})


def _logged_answers(paths, labels) -> dict:
    """The API's answers for the window's rows (the prediction log), joined to their outcomes:
    how the champion did online, beside its batch figures. A row asked several times counts once,
    with its latest answer; answers that read features from after their event are left out."""
    from mlplatform.features.service import PREDICTION_KEY, LABEL
    from mlplatform.ml.evaluate import metrics
    from mlplatform.model.tracking import REGISTERED_MODEL
    from mlplatform.serving.prediction_log import FOLDER, SHADOW_SUFFIX, read_log

    logged = read_log(paths.own / FOLDER, set(labels[PREDICTION_KEY]))
    logged = logged[logged["model"] == REGISTERED_MODEL]
    # An answer that read online values from after its event saw what no prediction made in time
    # could: counted, and left out of the realized figures.
    after_event = logged["features_after_event"].notna()
    figures = {"online_answers_after_event": int((after_event & ~logged["endpoint"].str.endswith(SHADOW_SUFFIX)).sum())}
    logged = logged[~after_event]
    in_shadow = logged["endpoint"].str.endswith(SHADOW_SUFFIX)
    # The answers given, and beside them a shadow challenger's scores of the same requests (model/shadow.py).
    for prefix, rows in (("online", logged[~in_shadow]), ("shadow_online", logged[in_shadow])):
        if prefix == "shadow_online" and rows.empty:
            continue
        answered = (rows.sort_values("logged_at", kind="stable").drop_duplicates(PREDICTION_KEY, keep="last")
                    .merge(labels, on=PREDICTION_KEY))
        figures |= {f"{prefix}_predictions": len(answered), f"{prefix}_roc_auc": "none"}
        if answered[LABEL].nunique() == 2:
            figures[f"{prefix}_roc_auc"] = round(metrics(answered[LABEL].to_numpy(),
                                                         answered[OUTPUT].to_numpy())["roc_auc"], 4)
    return figures


def _performance_checks(state: PlatformState, trailing_auc: float, evaluated: float | None, model_spec: ModelSpec,
                        policy: RetrainPolicy, window: str, version) -> list[dg.AssetCheckResult]:
    from mlplatform.automation.alerts import alert_on_check
    from mlplatform.ml.task import allowed_drop

    floor = model_spec.min_first_auc
    above = dg.AssetCheckResult(
        check_name=ABOVE_FLOOR, passed=bool(trailing_auc >= floor), severity=dg.AssetCheckSeverity.ERROR,
        description=f"trailing ROC AUC {trailing_auc:.4f} over {window}, floor {floor}",
        metadata={"trailing_roc_auc": round(trailing_auc, 4), "floor": floor, "champion_version": version or "none"})
    alert_on_check(state.paths, named("live_performance"), above,
                   f"the champion (version {version}) scored ROC AUC {trailing_auc:.4f} on {window}, below the "
                   f"floor of {floor} every challenger must reach: its predictions are no longer worth serving. "
                   "Look at feature_drift and the day files of those days; roll back or retrain.")
    drop = None if evaluated is None else evaluated - trailing_auc
    allowed = allowed_drop("roc_auc", evaluated, active().task.drop_margin, policy.auc_drop_margin)
    holds = dg.AssetCheckResult(
        check_name=HOLDS_AUC, passed=drop is None or drop <= allowed, severity=dg.AssetCheckSeverity.WARN,
        description="no evaluated champion" if drop is None else
        f"trailing ROC AUC {trailing_auc:.4f}, {drop:.4f} below its evaluation's {evaluated:.4f} "
        f"(allowed {allowed})",
        metadata={"auc_drop": round(drop, 4) if drop is not None else "none", "allowed": allowed})
    return [above, holds]


monitoring_assets = [feature_drift, live_performance]
