"""The downstream sensor: what the raw stage stored flows on through dbt, Feast, monitoring and
batch predictions, as run requests for the downstream selection (the platform's one mechanism).

It reads the Dagster instance, not the files: a day is due when its raw partitions were stored
after the day's last refresh. Due days that follow each other go in one run over the range (a
catch-up of a month is one dbt invocation, not thirty), and only one refresh runs at a time, so
days are built in order: the trailing statistics of a day read the days before it.
"""

import json
from dataclasses import dataclass, field

import dagster as dg

from mlplatform.automation.jobs import (
    DAILY_MODELS, DRIFT, ONLINE, RANGE_END, RANGE_START, RAW_DAILY, RAW_REFERENCE, REFERENCE_MODELS, SCORING,
    daily_refresh_job, keys, reference_refresh_job,
)
from mlplatform.automation.settings import sensor_status
from mlplatform.partitions import next_day

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]
# The refresh of a day ends with its online features: newer than them, its raw data is not carried yet.
DAY_DONE = dg.AssetKey("online_features")


def _latest_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else None


def runs_in_flight(instance: dg.DagsterInstance, job_names: list[str]) -> list[dg.DagsterRun]:
    return [r for name in job_names
            for r in instance.get_runs(dg.RunsFilter(job_name=name, statuses=IN_FLIGHT), limit=5)]


def due_days(instance: dg.DagsterInstance, attempted: dict[str, int]) -> dict[str, int]:
    """Days whose every daily raw table is stored, stored after the day's last refresh, and not
    attempted already with this raw data (a refresh that failed is not retried until the day's data
    is stored again): day -> the newest raw storage id."""
    stored = [instance.get_latest_storage_id_by_partition(k, dg.DagsterEventType.ASSET_MATERIALIZATION)
              for k in RAW_DAILY]
    refreshed = instance.get_latest_storage_id_by_partition(DAY_DONE, dg.DagsterEventType.ASSET_MATERIALIZATION)
    complete = set.intersection(*(set(s) for s in stored)) if stored else set()
    newest = {d: max(s[d] for s in stored) for d in complete}
    return {d: newest[d] for d in sorted(complete)
            if newest[d] > refreshed.get(d, -1) and attempted.get(d) != newest[d]}


def first_range(days: list[str]) -> tuple[str, str]:
    """The first run of consecutive days (sorted `YYYY-MM-DD` keys)."""
    end = 0
    while end + 1 < len(days) and days[end + 1] == next_day(days[end]):
        end += 1
    return days[0], days[end]


@dataclass
class DownstreamPlan:
    run_request: dg.RunRequest | None = None
    reason: str = ""
    attempted: dict[str, int] = field(default_factory=dict)  # the sensor's cursor


def plan_downstream_run(instance: dg.DagsterInstance, attempted: dict[str, int] | None = None) -> DownstreamPlan:
    attempted = dict(attempted or {})
    waiting = runs_in_flight(instance, [reference_refresh_job.name, daily_refresh_job.name])
    if waiting:
        return DownstreamPlan(reason=f"waiting for run {waiting[0].run_id[:8]} ({waiting[0].job_name}) to finish",
                              attempted=attempted)
    raw_reference = [_latest_id(instance, k) for k in RAW_REFERENCE]
    if None in raw_reference:
        return DownstreamPlan(reason="waiting for the reference tables to be landed and stored", attempted=attempted)
    built = [_latest_id(instance, k) for k in keys(REFERENCE_MODELS) + [dg.AssetKey("feature_definitions")]]
    if None in built or max(raw_reference) > min(built):
        return DownstreamPlan(run_request=dg.RunRequest(
            run_key=f"reference:{max(raw_reference)}", job_name=reference_refresh_job.name,
            tags={"mlplatform/trigger": "new reference data"}),
            reason="reference tables stored since the last reference refresh", attempted=attempted)
    due = due_days(instance, attempted)
    if not due:
        return DownstreamPlan(reason="every stored day is refreshed (or its refresh failed: see the "
                                     "failed runs; storing the day again retries it)", attempted=attempted)
    first, last = first_range(list(due))
    in_range = [d for d in due if first <= d <= last]
    selection = DAILY_MODELS + ONLINE
    extras = []
    if _latest_id(instance, dg.AssetKey("training_set")) is not None:
        extras += DRIFT
    if _latest_id(instance, dg.AssetKey("deployed_model")) is not None:
        extras += SCORING
    newest = max(due[d] for d in in_range)
    attempted.update({d: due[d] for d in in_range})
    tags = {RANGE_START: first, RANGE_END: last, "mlplatform/trigger": "new raw data",
            "mlplatform/days": f"{first}..{last}"}
    return DownstreamPlan(run_request=dg.RunRequest(
        run_key=f"daily:{first}..{last}:{newest}", job_name=daily_refresh_job.name,
        asset_selection=keys(selection + extras), tags=tags),
        reason=f"{len(due)} day(s) due; refreshing {first} .. {last}", attempted=attempted)


@dg.sensor(
    name="downstream_sensor",
    jobs=[reference_refresh_job, daily_refresh_job],
    minimum_interval_seconds=5,
    default_status=sensor_status(),
    description="Stored raw days -> one run of dbt, online features, drift, batch predictions and live "
                "performance for the due days (a range when they follow each other); reference data first.",
)
def downstream_sensor(context: dg.SensorEvaluationContext):
    plan = plan_downstream_run(context.instance, json.loads(context.cursor) if context.cursor else {})
    context.update_cursor(json.dumps(plan.attempted, sort_keys=True))
    if plan.run_request is None:
        return dg.SkipReason(plan.reason)
    context.log.info(plan.reason)
    return plan.run_request
