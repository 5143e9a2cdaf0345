"""The downstream sensor: what the raw stage stored flows on through dbt, Feast, monitoring and
batch predictions, as run requests for the downstream selection (the platform's one mechanism).

It reads the Dagster instance, not the files: a day is due when its raw partitions were stored
after the day's last refresh. Due days that follow each other go in one run over the range (a
catch-up of a month is one dbt invocation, not thirty), and only one refresh runs at a time, so
days are built in order: the trailing statistics of a day read the days before it. For the same
reason a late or corrected day also rebuilds the later days whose trailing windows read it. A
refresh that fails is tried again (`retries.py`).
"""

import json
import time
from dataclasses import dataclass, field

import dagster as dg

from mlplatform.automation.jobs import (
    DAILY_MODELS, DRIFT, FEATURE_DEFINITIONS, ONLINE, RANGE_END, RANGE_START, RAW_REFERENCE, REFERENCE_MODELS, RETRAIN,
    SCORING,
    daily_refresh_job, keys, reference_refresh_job,
)
from mlplatform.automation.deployments import dagster_champion
from mlplatform.automation.progress import UNFINISHED_STATUSES, refreshed_days, stored_unrefreshed
from mlplatform.automation.retries import Attempt, RetryPolicy
from mlplatform.automation.settings import sensor_status
from mlplatform.partitions import days_apart, next_day
from mlplatform.state import StatePaths
from mlplatform.usecases import active, named
from mlplatform.warehouse.project import longest_lookback_days

# A run being cancelled still holds its days: no second run of the job starts beside it.
IN_PROGRESS = [dg.DagsterRunStatus(s) for s in UNFINISHED_STATUSES]
REFERENCE = "reference"  # the reference refresh's entry in the cursor


def _latest_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else None


def runs_in_progress(instance: dg.DagsterInstance, job_names: list[str]) -> list[dg.DagsterRun]:
    return [r for name in job_names
            for r in instance.get_runs(dg.RunsFilter(job_name=name, statuses=IN_PROGRESS), limit=5)]


def first_range(days: list[str]) -> tuple[str, str]:
    """The first run of consecutive days (sorted `YYYY-MM-DD` keys)."""
    end = 0
    while end + 1 < len(days) and days[end + 1] == next_day(days[end]):
        end += 1
    return days[0], days[end]


def later_days_affected(last: str, refreshed: dict[str, int], window_days: int) -> str:
    """The last day to rebuild with a range ending on `last`: the refreshed days right after it whose
    trailing features (windows of `window_days`) read the range's days. A late or corrected day
    thus recomputes the later days built from its old data, and the online store follows."""
    end, day = last, next_day(last)
    while day in refreshed and days_apart(last, day) <= window_days:
        end, day = day, next_day(day)
    return end


@dataclass
class DownstreamPlan:
    run_request: dg.RunRequest | None = None
    reason: str = ""
    attempted: dict[str, list] = field(default_factory=dict)  # the sensor's cursor: day -> Attempt
    given_up: list[str] = field(default_factory=list)  # days whose attempts on this data are spent


def plan_downstream_run(instance: dg.DagsterInstance, attempted: dict | None = None, *,
                        retry: RetryPolicy = RetryPolicy(), now: float | None = None,
                        paths: StatePaths | None = None) -> DownstreamPlan:
    """The next refresh to run, if any. A day whose refresh failed is tried again after the retry
    policy's backoff, up to its attempts; days are refreshed in order, so later days wait for it.
    Feature definitions edited since they were applied are applied again first (a reference refresh)."""
    from mlplatform.features.repo import applied_hash, definitions_hash

    now = time.time() if now is None else now
    applied, wanted = applied_hash(paths or StatePaths.resolve(None)), definitions_hash()
    edited = applied is not None and applied != wanted
    tried = {day: Attempt.parse(value) for day, value in (attempted or {}).items()}
    plan = DownstreamPlan(attempted={d: a.dump() for d, a in tried.items()})
    waiting = runs_in_progress(instance, [reference_refresh_job.name, daily_refresh_job.name])
    if waiting:
        plan.reason = f"waiting for run {waiting[0].run_id[:8]} ({waiting[0].job_name}) to finish"
        return plan
    raw_reference = [_latest_id(instance, k) for k in RAW_REFERENCE]
    if None in raw_reference:
        plan.reason = "waiting for the reference tables to be landed and stored"
        return plan
    built = [_latest_id(instance, k) for k in keys(REFERENCE_MODELS) + [dg.AssetKey(FEATURE_DEFINITIONS)]]
    newest_reference = max(raw_reference, default=0)  # a use case may have no reference tables
    if None in built or newest_reference > min(built) or edited:
        # The work's version: the newest reference data, or the edited definitions (each edit its own
        # attempts, so that edits made one after another are never taken for retries of one failure).
        version = int(wanted[:12], 16) if edited else newest_reference
        attempt = tried.get(REFERENCE) or Attempt(0)
        wait = retry.wait_seconds(attempt.attempts if attempt.version == version else 0, attempt.at, now)
        if wait is None:
            plan.given_up = [REFERENCE]
            plan.reason = (f"the reference refresh failed {attempt.attempts} time(s) on this data: see the "
                           "failed runs; storing the reference tables again, editing the feature definitions "
                           "or `mlplatform pipeline` retries it")
            return plan
        if wait > 0:
            plan.reason = f"the reference refresh failed; trying again in {wait:.0f} s"
            return plan
        plan.attempted[REFERENCE] = attempt.next(version, now).dump()
        plan.run_request = dg.RunRequest(
            run_key=f"reference:{version}:{plan.attempted[REFERENCE][1]}",
            job_name=reference_refresh_job.name,
            tags={"mlplatform/trigger": "feature definitions edited" if edited else "new reference data"})
        plan.reason = ("the feature definitions (feature_repo/) changed since they were applied" if edited else
                       "reference tables stored since the last reference refresh")
        return plan
    due = stored_unrefreshed(instance)
    ready = {}
    for day, storage_id in due.items():
        attempt = tried.get(day) or Attempt(0)
        wait = retry.wait_seconds(attempt.attempts if attempt.version == storage_id else 0, attempt.at, now)
        if wait is None:
            plan.given_up.append(day)
        elif wait > 0 and not ready:  # the first day to refresh must wait: so do the later ones
            plan.reason = f"the refresh of {day} failed; trying again in {wait:.0f} s"
            return plan
        elif wait == 0:
            ready[day] = storage_id
    if not ready:
        plan.reason = ("every stored day is refreshed" if not plan.given_up else
                       f"{len(plan.given_up)} day(s) whose refresh failed {retry.max_attempts} time(s), first "
                       f"{plan.given_up[0]}: see the failed runs; storing the day again or `mlplatform "
                       "pipeline` retries them")
        return plan
    first, last = first_range(list(ready))
    in_range = [d for d in ready if first <= d <= last]
    last = later_days_affected(last, {d: i for d, i in refreshed_days(instance).items() if d not in due},
                               longest_lookback_days(active().dbt_folder))
    selection = DAILY_MODELS + ONLINE
    extras = []
    if _latest_id(instance, dg.AssetKey(RETRAIN[0])) is not None:
        extras += DRIFT
    if dagster_champion(instance, dg.AssetKey(RETRAIN[-1])) is not None:  # a refused first has none to score with
        extras += SCORING
    newest = max(ready[d] for d in in_range)
    for day in in_range:
        plan.attempted[day] = (tried.get(day) or Attempt(0)).next(ready[day], now).dump()
    tags = {RANGE_START: first, RANGE_END: last, "mlplatform/trigger": "new raw data",
            "mlplatform/days": f"{first}..{last}"}
    if last != in_range[-1]:
        tags["mlplatform/recomputed_after"] = f"{next_day(in_range[-1])}..{last}"
    attempts = plan.attempted[first][1]
    plan.run_request = dg.RunRequest(
        run_key=f"daily:{first}..{last}:{newest}" + (f":attempt{attempts}" if attempts > 1 else ""),
        job_name=daily_refresh_job.name, asset_selection=keys(selection + extras), tags=tags)
    plan.reason = (f"{len(due)} day(s) due; refreshing {first} .. {last}"
                   + (" (the later days read the changed ones)" if last != in_range[-1] else "")
                   + (f", attempt {attempts}" if attempts > 1 else ""))
    return plan


@dg.sensor(
    name=named("downstream_sensor"),
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
