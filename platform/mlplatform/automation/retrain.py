"""The retrain sensor: decides when the model is retrained, and says why, every time.

Triggers (settings in `RetrainPolicy`):
    no_champion          nothing deployed yet, and enough labeled rows to train a first model
    new_labeled_rows  enough rows labeled after the champion's last training day
    feature_drift        more features than allowed drift (PSI) on the newest days
    live_performance     the champion's trailing realized ROC AUC fell below its evaluation AUC by a margin
A cooldown keeps a burst of triggers from becoming a burst of trainings. A requested run carries
its trigger, the reason and the figures in its tags (and `retrain_decisions.jsonl`); a tick that
requests nothing says why in its skip reason (the sensor's tick history in the UI).
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from mlplatform.automation.downstream import runs_in_progress
from mlplatform.automation.progress import stored_unrefreshed
from mlplatform.automation.records import DECISIONS_LOG
from mlplatform.automation.jobs import (
    daily_refresh_job, reference_refresh_job, retrain_job, retrain_live_job, shadow_decision_job,
)
from mlplatform.automation.settings import sensor_status
from mlplatform.features.training import ENTITY_TABLE, matured_days
from mlplatform.ml import task
from mlplatform.resources import ModelSpec, PlatformState, RetrainPolicy
from mlplatform.usecases import active, named



@dataclass
class RetrainFacts:
    champion_version: int | None = None
    trained_through: str | None = None  # the champion's last training day
    labeled_rows: int = 0  # built and labeled after `trained_through` (all, with no champion)
    built_days: int = 0
    days_needed: int = 0  # holdout + validation + training days, per the model spec
    training_rows: int | None = None  # labeled rows of the days a split would train on
    min_train_rows: int = 0  # the model spec's floor on them
    newest_day: str | None = None
    drift_days: str | None = None  # the newest drift measurement after `trained_through`
    drifted_features: list[str] = field(default_factory=list)
    max_psi: float | None = None
    live_metric: float | None = None  # the champion's trailing realized figure on the use case's metric
    evaluation_metric: float | None = None  # the same figure on its holdout
    metric: str = "roc_auc"
    drop_margin: float | None = None  # the use case's task.drop_margin (metric units), if declared
    minutes_since_last_retrain: float | None = None
    retrain_in_progress: str | None = None  # the run id of a retrain queued or running
    refresh_in_progress: str | None = None  # the run id of a reference or daily refresh queued or running
    unrefreshed_days: list[str] = field(default_factory=list)  # stored, not carried downstream (failed or due)
    refused_version: int | None = None  # the newest challenger, refused by the gate, trained on today's inputs
    refused_reason: str | None = None


@dataclass
class RetrainDecision:
    retrain: bool
    trigger: str
    reason: str
    figures: dict[str, Any]


def decide(policy: RetrainPolicy, facts: RetrainFacts) -> RetrainDecision:
    figures = {k: v for k, v in asdict(facts).items() if v not in (None, [])}
    if facts.retrain_in_progress:
        return RetrainDecision(False, "", f"a retrain is already queued or running ({facts.retrain_in_progress[:8]})",
                               figures)
    if facts.refresh_in_progress:
        # Its drift and live performance are part of this decision, and a training set read while
        # the refresh still builds would miss the days it is carrying.
        return RetrainDecision(False, "", f"waiting for the refresh run {facts.refresh_in_progress[:8]} to finish",
                               figures)
    if facts.unrefreshed_days:
        # A training set built now would miss them, or read features a failed refresh left half-built.
        days = facts.unrefreshed_days
        return RetrainDecision(False, "", f"waiting for {len(days)} stored day(s) to be refreshed ({days[0]}"
                                          + (f" .. {days[-1]}" if len(days) > 1 else "") + "): a refresh "
                                          "failed or is due; see the failed runs", figures)
    if facts.refused_version is not None:
        # A refusal is a decision: training again on the same rows, code and settings would repeat it.
        return RetrainDecision(False, "", f"version {facts.refused_version}, trained on these same labeled rows, "
                                          f"code and settings, was refused by the gate ({facts.refused_reason}); "
                                          "waiting for new labeled rows, a code change or new settings", figures)
    if facts.built_days < facts.days_needed:
        return RetrainDecision(False, "", f"waiting for {facts.days_needed} built days to split into training, "
                                          f"validation and holdout (have {facts.built_days})", figures)
    if facts.training_rows is not None and facts.training_rows < facts.min_train_rows:
        # Training would refuse the split (model_spec.min_train_rows): wait, rather than fail a run.
        return RetrainDecision(False, "", f"waiting for {facts.min_train_rows:,} labeled rows in the training days "
                                          f"(have {facts.training_rows:,}; model_spec.min_train_rows)", figures)
    fired: list[tuple[str, str]] = []
    needed = policy.min_new_labeled_rows
    if facts.champion_version is None:
        if facts.labeled_rows >= first_model_rows(policy):
            fired.append(("no_champion", f"no champion yet and {facts.labeled_rows:,} labeled rows to train on"))
    elif needed and facts.labeled_rows >= needed:
        fired.append(("new_labeled_rows", f"{facts.labeled_rows:,} rows labeled since the champion's "
                                             f"last training day {facts.trained_through} (threshold {needed:,})"))
    drifted = len(facts.drifted_features)
    if policy.drift_trigger and facts.champion_version is not None and drifted > policy.max_drifted_features:
        fired.append(("feature_drift", f"{drifted} features drifted on {facts.drift_days} (PSI over "
                                       f"{policy.psi_threshold}, allowed {policy.max_drifted_features}): "
                                       f"{', '.join(facts.drifted_features[:5])}"))
    drop = task.drop(facts.metric, facts.evaluation_metric, facts.live_metric)
    margin = _margin(facts, policy)
    if policy.performance_trigger and drop is not None and drop > margin:
        fired.append(("live_performance", f"trailing realized {_label(facts.metric)} {facts.live_metric:.4f} is "
                                          f"{drop:.4f} worse than its evaluation's {facts.evaluation_metric:.4f} "
                                          f"(margin {margin})"))
    if not fired:
        return RetrainDecision(False, "", _why_not(facts, policy, drop), figures)
    trigger, reason = fired[0][0], "; ".join(r for _, r in fired)
    since = facts.minutes_since_last_retrain
    if since is not None and since < policy.cooldown_minutes:
        return RetrainDecision(False, trigger, f"cooling down ({since:.1f} of {policy.cooldown_minutes} min since "
                                               f"the last retrain; retrain_policy.cooldown_minutes, MLPLATFORM_RETRAIN_COOLDOWN_MINUTES) "
                                               f"although: {reason}", figures)
    return RetrainDecision(True, trigger, reason, figures)


def _label(metric: str) -> str:
    return "AUC" if metric == "roc_auc" else metric.upper()


def _margin(facts: RetrainFacts, policy: RetrainPolicy) -> float:
    return task.allowed_drop(facts.metric, facts.evaluation_metric, facts.drop_margin, policy.auc_drop_margin)


def first_model_rows(policy: RetrainPolicy) -> int:
    """The labeled rows that train a first model (once the days split)."""
    return min(max(policy.min_new_labeled_rows, 1), policy.min_first_model_rows)


def _why_not(facts: RetrainFacts, policy: RetrainPolicy, drop: float | None) -> str:
    """Each trigger that is on and how far it is from firing; then those turned off, with what they
    would have seen (never a reason: they cannot fire)."""
    on, off = [], []
    needed = policy.min_new_labeled_rows if facts.champion_version is not None else first_model_rows(policy)
    labeled = f"{facts.labeled_rows:,} of {needed:,} new labeled rows"
    (on if needed else off).append(labeled if needed else "new labeled rows")
    name = _label(facts.metric)
    if drop is None:
        (on if policy.performance_trigger else off).append(f"live {name} (none realized yet)")
    else:
        live = (f"live {name} {facts.live_metric:.4f}, {drop:.4f} worse than its evaluation's "
                f"{facts.evaluation_metric:.4f} (retrains past {_margin(facts, policy)})")
        (on if policy.performance_trigger else off).append(live)
    drifted = len(facts.drifted_features)
    drift = ("drift (not measured yet)" if facts.max_psi is None else
             f"drift: {drifted} input(s) of the prediction mix over PSI {policy.psi_threshold} "
             f"(retrains past {policy.max_drifted_features})")
    (on if policy.drift_trigger else off).append(drift)
    return "no trigger fired: " + "; ".join(on) + (f". Off: {'; '.join(off)}" if off else "")


def _latest_metadata(instance: dg.DagsterInstance, key: str) -> tuple[dict[str, Any], str]:
    """The latest materialization's metadata, and the day (partition) it covers: a range's days are
    materialized in order, so the latest is its last day. The day is read from the event, never
    parsed back from the metadata's display text."""
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    if event is None or event.asset_materialization is None:
        return {}, ""
    materialization = event.asset_materialization
    return {k: v.value for k, v in materialization.metadata.items()}, materialization.partition or ""


def gather_facts(instance: dg.DagsterInstance, state: PlatformState, now: datetime,
                 spec: ModelSpec | None = None) -> RetrainFacts:
    import pyarrow.parquet as pq

    from mlplatform.model.deployment import served_champion

    champion = served_champion(state.paths)
    use_case = active()
    facts = RetrainFacts(metric=use_case.task.metric, drop_margin=use_case.task.drop_margin)
    if champion:
        facts.champion_version = champion["version"]
        facts.trained_through = champion["trained_through"]
        facts.evaluation_metric = champion["holdout"].get(facts.metric)
    cutoff = facts.trained_through or ""
    # Days count once their outcomes are known; a split leaves the label delay out before the holdout.
    matured = matured_days(state.exports.days(ENTITY_TABLE))
    delay = use_case.prediction.label_delay_days
    facts.built_days = len(matured)
    rows = {d: pq.ParquetFile(state.exports.path(ENTITY_TABLE, d)).metadata.num_rows for d in matured}
    if spec is not None and not spec.holdout_first_day:
        from mlplatform.ml.split import SHORT_VALIDATION_DAYS

        held_out = spec.holdout_days + (spec.validation_days or SHORT_VALIDATION_DAYS) + delay
        facts.days_needed = held_out + spec.min_train_days
        facts.training_rows = sum(rows[d] for d in matured[:max(len(matured) - held_out, 0)])
        facts.min_train_rows = spec.min_train_rows
    # Only rows whose outcomes are known count (the use case's label_delay_days).
    days = [d for d in matured if d > cutoff]
    facts.labeled_rows = sum(rows[d] for d in days)
    facts.newest_day = days[-1] if days else None

    drift, drift_day = _latest_metadata(instance, named("feature_drift"))
    if drift and champion and drift_day > cutoff:
        facts.drift_days, facts.max_psi = drift["days"], drift.get("max_psi")
        facts.drifted_features = list(drift.get("drifted_features") or [])
    live, live_day = _latest_metadata(instance, named("live_performance"))
    if live and champion and live.get("champion_version") == champion["version"] and live_day > cutoff:
        facts.live_metric = live.get(f"trailing_{facts.metric}")

    in_progress = runs_in_progress(instance, [retrain_job.name, *([retrain_live_job.name] if retrain_live_job else [])])
    facts.retrain_in_progress = in_progress[0].run_id if in_progress else None
    refreshing = runs_in_progress(instance, [reference_refresh_job.name, daily_refresh_job.name])
    facts.refresh_in_progress = refreshing[0].run_id if refreshing else None
    facts.unrefreshed_days = list(stored_unrefreshed(instance))
    if spec is not None:
        facts.refused_version, facts.refused_reason = _refused_on_same_inputs(state, spec)
    last = last_retrain(instance)
    if last:
        facts.minutes_since_last_retrain = round((now - last.create_timestamp).total_seconds() / 60, 2)
    return facts


def _refused_on_same_inputs(state: PlatformState, spec: ModelSpec) -> tuple[int | None, str | None]:
    """The newest registered version, if the gate refused it and it was trained on the inputs there
    are now (`model/inputs.py`)."""
    from mlplatform.model.inputs import INPUTS_TAG, training_inputs
    from mlplatform.model.lines import LINES
    from mlplatform.model.tracking import REGISTERED_MODEL, client, store_exists

    if not store_exists(state.paths):
        return None, None
    versions = client(state.paths).search_model_versions(f"name='{REGISTERED_MODEL}'")
    if not versions:
        return None, None
    newest = max(versions, key=lambda v: int(v.version))
    settings = LINES[0].settings(spec.model_dump())
    if newest.tags.get("gate") != "failed" or newest.tags.get(INPUTS_TAG) != training_inputs(state.exports, settings):
        return None, None
    return int(newest.version), newest.tags.get("gate_reason", "refused")


# A retrain whose process died (the `orphaned` tag of `recovery.py`) did no work: it starts no
# cooldown, so the next tick retrains at once; after this many in a row, the cooldown applies.
MAX_CRASHED_RETRAINS = 3


def last_retrain(instance: dg.DagsterInstance):
    """The run record the cooldown counts from: the latest retrain that did not die with its process."""
    from mlplatform.automation.recovery import ORPHANED_TAG

    records = instance.get_run_records(dg.RunsFilter(job_name=retrain_job.name), limit=MAX_CRASHED_RETRAINS)
    for record in records:
        if record.dagster_run.tags.get(ORPHANED_TAG) != "true":
            return record
    return records[0] if len(records) >= MAX_CRASHED_RETRAINS else None


def shadow_decision_request(state: PlatformState, model_spec: ModelSpec) -> dg.RunRequest | None:
    """A run of `deployed_model` once the challenger in shadow has its days (model/shadow.py)."""
    from mlplatform.model.shadow import ready

    found = ready(state.paths, state.exports, model_spec.shadow_days)
    if found is None:
        return None
    return dg.RunRequest(run_key=f"shadow:{found.version}:{found.days[-1]}", job_name=shadow_decision_job.name,
                         tags={"mlplatform/trigger": "shadow_decision",
                               "mlplatform/shadow": f"version {found.version}, {len(found.days)} scored day(s)"})


def record_decision(state: PlatformState, decision: RetrainDecision, at: datetime) -> None:
    with open(state.paths.own / DECISIONS_LOG, "a") as log:
        log.write(json.dumps({"at": at.isoformat(), **asdict(decision)}) + "\n")


@dg.sensor(
    name=named("retrain_sensor"),
    jobs=[job for job in (retrain_job, retrain_live_job, shadow_decision_job) if job is not None],
    minimum_interval_seconds=15,
    default_status=sensor_status(),
    description="Retrains when enough new labeled rows arrived, features drifted, or the champion's "
                "live AUC fell; with a cooldown. Every decision says why. Each retrain of the day-ahead "
                "model also retrains the live model (`retrain_live`), unless retrain_policy.live_model is off.",
)
def retrain_sensor(context: dg.SensorEvaluationContext, state: PlatformState, retrain_policy: RetrainPolicy,
                   model_spec: ModelSpec):
    from mlplatform.automation.deployments import reconcile_champion

    for line in reconcile_champion(state.paths, context.instance):  # after a crash mid-promotion
        context.log.warning(line)
    now = datetime.now(timezone.utc)
    decision = decide(retrain_policy, gather_facts(context.instance, state, now, model_spec))
    if not decision.retrain:
        shadow = shadow_decision_request(state, model_spec)
        return [shadow] if shadow is not None else dg.SkipReason(decision.reason)
    record_decision(state, decision, now)
    facts = decision.figures
    key = f"retrain:{decision.trigger}:{facts.get('newest_day')}:{facts.get('champion_version')}"
    tags = {"mlplatform/trigger": f"retrain:{decision.trigger}", "mlplatform/retrain_reason": decision.reason[:1000],
            "mlplatform/retrain_figures": json.dumps(facts, default=str)[:4000]}
    requests = [dg.RunRequest(run_key=key, job_name=retrain_job.name, tags=tags)]
    if retrain_policy.live_model and retrain_live_job is not None:  # the same decision, the same data: the live model's own run
        requests.append(dg.RunRequest(run_key=f"{key}:live", job_name=retrain_live_job.name, tags=tags))
    return requests
