"""The landing sensor: each new or re-delivered landing file becomes a run of its raw partition.

The cursor remembers every file it requested, by path and modification time, so a file is requested
once, a re-delivered one (a new modification time) again, and nothing landed while the daemon was
down is missed. A file that breaks its contract is moved to quarantine by its run: it leaves the
landing zone and is never requested again, unless it is delivered anew. A requested file still
neither stored nor quarantined once no raw run is in progress (its run crashed, or the disk was full)
is requested again, per the retry policy. A file whose name is no day of the feed is quarantined
here, before any run.
"""

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from mlplatform.automation.jobs import RANGE_END, RANGE_START, raw_daily_job, raw_reference_job
from mlplatform.automation.retries import Attempt, RetryPolicy
from mlplatform.automation.settings import sensor_status
from mlplatform.partitions import FIRST_DAY, LAST_DAY
from mlplatform.usecases import active, named

DAILY_TABLES, REFERENCE_TABLES = active().daily_tables, active().reference_tables
from mlplatform.ingest.landing import LandingZone, sha256
from mlplatform.partitions import next_day
from mlplatform.resources import PlatformState


@dataclass
class LandingPlan:
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    seen: dict[str, list] = field(default_factory=dict)  # the cursor: file -> Attempt (version: mtime)
    quarantined: list[str] = field(default_factory=list)  # files set aside for their names


def landed_files(zone: LandingZone) -> dict[str, tuple[str, str | None, int]]:
    """Every complete landing file: relative path -> (table, day or None, modification time in ns)."""
    found = {}
    for table in REFERENCE_TABLES:
        path = zone.file(table)
        if path.exists():
            found[str(path.relative_to(zone.root))] = (table, None, os.stat(path).st_mtime_ns)
    for table in DAILY_TABLES:
        for day in zone.days(table):  # `*.csv` only: files being written have another name
            path = zone.file(table, day)
            try:
                found[str(path.relative_to(zone.root))] = (table, day, os.stat(path).st_mtime_ns)
            except FileNotFoundError:  # moved to quarantine since it was listed
                continue
    return found


def quarantine_misnamed(zone: LandingZone) -> list[str]:
    """Daily files whose name is not a day of the feed's range (`2014-01-01.csv`, `2013-02-30.csv`,
    `jan-5.csv`) go to quarantine with the reason: nothing could load them, and they must not stop
    the files beside them."""
    moved = []
    for table in DAILY_TABLES:
        for path in zone.misnamed(table, FIRST_DAY, LAST_DAY):
            try:
                quarantined = zone.quarantine(path, {
                    "table": table, "day": None, "kind": "file_name",
                    "problem": f"{path.name!r} is not a day of the feed: daily files are named YYYY-MM-DD.csv "
                               f"for a day from {FIRST_DAY} to {LAST_DAY}"})
            except FileNotFoundError:  # another process moved it first
                continue
            moved.append(str(quarantined.path))
    return moved


def already_stored(instance: dg.DagsterInstance, state: PlatformState) -> Callable[[str, str | None], bool]:
    """Whether the lake holds exactly this landing file already, as a recorded materialization (the
    stored partition's source checksum is the file's): so a file `mlplatform pipeline` loaded, or
    one loaded before the sensor's cursor was reset, is not loaded twice."""
    recorded: dict[str, set[str | None]] = {}

    def is_recorded(table: str, day: str | None) -> bool:
        if table not in recorded:  # one query per table, not one per file
            key = dg.AssetKey(f"raw_{table}")
            if table in DAILY_TABLES:
                recorded[table] = set(instance.get_latest_storage_id_by_partition(
                    key, dg.DagsterEventType.ASSET_MATERIALIZATION))
            else:
                recorded[table] = {None} if instance.fetch_materializations(key, limit=1).records else set()
        return day in recorded[table]

    def check(table: str, day: str | None) -> bool:
        stored = state.lake.source_sha256(table, day)
        return (stored is not None and stored == sha256(state.landing.file(table, day).read_bytes())
                and is_recorded(table, day))
    return check


def plan_landing_runs(zone: LandingZone, seen: dict, stored: Callable[[str, str | None], bool] | None = None,
                      ranges: bool = False, *, retry: RetryPolicy = RetryPolicy(), now: float | None = None,
                      runs_in_progress: bool = False) -> LandingPlan:
    """Run requests for the files not requested yet, and for requested files still neither stored nor
    quarantined once their runs ended (a crash, a full disk: tried again per the retry policy): one
    run per day (or, with `ranges`, per run of consecutive days with the same tables: a day whose
    files are tried again goes alone, so that after a range failed on a bad file the bad day fails
    alone and the others are stored), one for the reference tables."""
    now = time.time() if now is None else now
    plan = LandingPlan(quarantined=quarantine_misnamed(zone))
    files = landed_files(zone)
    new = {}
    for rel, info in files.items():
        attempt = Attempt.parse(seen.get(rel))
        if attempt is not None and attempt.version == info[2]:  # requested before
            plan.seen[rel] = attempt.dump()
            if runs_in_progress or stored is None or retry.wait_seconds(attempt.attempts, attempt.at, now) != 0:
                continue  # in progress, settled, given up or backing off: no need to read the file
            if _stored(stored, info):
                plan.seen[rel] = settled(info[2], retry, now)
                continue
        elif stored and _stored(stored, info):  # loaded already (by `mlplatform pipeline`, say)
            plan.seen[rel] = settled(info[2], retry, now)
            continue
        new[rel] = info
        plan.seen[rel] = (attempt or Attempt(0)).next(info[2], now).dump()
    by_day: dict[str | None, list[tuple[str, int]]] = defaultdict(list)
    for rel, (table, day, mtime) in sorted(new.items()):
        by_day[day].append((table, mtime))
    if None in by_day:
        tables = by_day.pop(None)
        plan.run_requests.append(dg.RunRequest(
            run_key="reference:" + _files_key(tables) + _attempt_suffix(plan, new, None),
            job_name=raw_reference_job.name,
            asset_selection=[dg.AssetKey(f"raw_{t}") for t, _ in tables], tags=_tags(tables)))
    retried = {info[1] for rel, info in new.items() if plan.seen[rel][1] > 1}
    for days in _day_groups(by_day, ranges, alone=retried):
        tables = [entry for day in days for entry in by_day[day]]
        names = sorted({t for t, _ in tables})
        request = dict(job_name=raw_daily_job.name, asset_selection=[dg.AssetKey(f"raw_{t}") for t in names])
        if len(days) == 1:
            plan.run_requests.append(dg.RunRequest(
                run_key=f"{days[0]}:" + _files_key(tables) + _attempt_suffix(plan, new, days[0]),
                partition_key=days[0], tags=_tags(tables), **request))
        else:
            plan.run_requests.append(dg.RunRequest(
                run_key=f"{days[0]}..{days[-1]}:" + hashlib.sha256(_files_key(tables).encode()).hexdigest()[:16]
                + _attempt_suffix(plan, new, days[0]),
                tags={**_tags(tables), RANGE_START: days[0], RANGE_END: days[-1]}, **request))
    return plan


def settled(version: int, retry: RetryPolicy, now: float) -> list:
    """A stored file's cursor entry: no attempt left on this version, so later ticks do not hash it
    again (a new delivery has a new modification time, a new version)."""
    return Attempt(version, retry.max_attempts, now).dump()


def _attempt_suffix(plan: LandingPlan, new: dict, day: str | None) -> str:
    """A retry needs a run key of its own (the sensor skips a key it requested before)."""
    attempts = max(plan.seen[rel][1] for rel, info in new.items() if info[1] == day)
    return f":attempt{attempts}" if attempts > 1 else ""


def _files_key(tables: list[tuple[str, int]]) -> str:
    return ",".join(f"{t}@{m}" for t, m in tables)


def _tags(tables: list[tuple[str, int]]) -> dict[str, str]:
    return {"mlplatform/trigger": "landing", "mlplatform/files": ",".join(sorted({t for t, _ in tables}))}


def _day_groups(by_day: dict[str, list[tuple[str, int]]], ranges: bool, alone: set = frozenset()) -> list[list[str]]:
    """Each day alone, or runs of consecutive days whose new files are of the same tables (but the
    days in `alone`)."""
    groups: list[list[str]] = []
    for day in sorted(by_day):
        if (ranges and groups and next_day(groups[-1][-1]) == day and day not in alone
                and groups[-1][-1] not in alone
                and {t for t, _ in by_day[groups[-1][-1]]} == {t for t, _ in by_day[day]}):
            groups[-1].append(day)
        else:
            groups.append([day])
    return groups


def _stored(stored: Callable[[str, str | None], bool], info: tuple[str, str | None, int]) -> bool:
    try:
        return stored(info[0], info[1])
    except FileNotFoundError:  # quarantined meanwhile
        return True


@dg.sensor(
    name=named("landing_sensor"),
    jobs=[job for job in (raw_daily_job, raw_reference_job) if job is not None],
    minimum_interval_seconds=5,
    default_status=sensor_status(),
    description="New or re-delivered landing files -> runs of their raw partitions: consecutive days "
                "landed since the last tick in one run (a day tried again in a run of its own).",
)
def landing_sensor(context: dg.SensorEvaluationContext, state: PlatformState):
    from mlplatform.automation.downstream import runs_in_progress

    zone = state.landing
    in_progress = bool(runs_in_progress(context.instance, [raw_daily_job.name, *([raw_reference_job.name] if raw_reference_job else [])]))
    # Ranges: a replay or a late feed lands several days between ticks, and a run per day would pay
    # a process start and a code-location load per day.
    plan = plan_landing_runs(zone, json.loads(context.cursor) if context.cursor else {},
                             already_stored(context.instance, state), ranges=True, runs_in_progress=in_progress)
    context.update_cursor(json.dumps(plan.seen, sort_keys=True))
    for path in plan.quarantined:
        context.log.warning(f"quarantined {path}: its name is not a day of the feed (reason beside it)")
    if not plan.run_requests:
        return dg.SkipReason(f"no new landing files ({len(plan.seen)} already requested)")
    return plan.run_requests
