"""The landing sensor: each new or re-delivered landing file becomes a run of its raw partition.

The cursor remembers every file it requested, by path and modification time, so a file is requested
once, a re-delivered one (a new modification time) again, and nothing landed while the daemon was
down is missed. A file that breaks its contract is moved to quarantine by its run: it leaves the
landing zone and is never requested again, unless it is delivered anew.
"""

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from mlplatform.automation.jobs import RANGE_END, RANGE_START, raw_daily_job, raw_reference_job
from mlplatform.automation.settings import sensor_status
from mlplatform.domain import DAILY_TABLES, REFERENCE_TABLES
from mlplatform.ingest.landing import LandingZone, sha256
from mlplatform.partitions import next_day
from mlplatform.resources import PlatformState


@dataclass
class LandingPlan:
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)


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


def plan_landing_runs(zone: LandingZone, seen: dict[str, int],
                      stored: Callable[[str, str | None], bool] | None = None, ranges: bool = False) -> LandingPlan:
    """Run requests for the files not requested yet: one run per day (or, with `ranges`, per run of
    consecutive days with the same tables), one for the reference tables."""
    files = landed_files(zone)
    new = {rel: info for rel, info in files.items()
           if seen.get(rel) != info[2] and not (stored and rel not in seen and _stored(stored, info))}
    by_day: dict[str | None, list[tuple[str, int]]] = defaultdict(list)
    for rel, (table, day, mtime) in sorted(new.items()):
        by_day[day].append((table, mtime))
    plan = LandingPlan(seen={rel: info[2] for rel, info in files.items()})  # forget files that left
    if None in by_day:
        tables = by_day.pop(None)
        plan.run_requests.append(dg.RunRequest(
            run_key="reference:" + _files_key(tables), job_name=raw_reference_job.name,
            asset_selection=[dg.AssetKey(f"raw_{t}") for t, _ in tables], tags=_tags(tables)))
    for days in _day_groups(by_day, ranges):
        tables = [entry for day in days for entry in by_day[day]]
        names = sorted({t for t, _ in tables})
        request = dict(job_name=raw_daily_job.name, asset_selection=[dg.AssetKey(f"raw_{t}") for t in names])
        if len(days) == 1:
            plan.run_requests.append(dg.RunRequest(run_key=f"{days[0]}:" + _files_key(tables),
                                                   partition_key=days[0], tags=_tags(tables), **request))
        else:
            plan.run_requests.append(dg.RunRequest(
                run_key=f"{days[0]}..{days[-1]}:" + hashlib.sha256(_files_key(tables).encode()).hexdigest()[:16],
                tags={**_tags(tables), RANGE_START: days[0], RANGE_END: days[-1]}, **request))
    return plan


def _files_key(tables: list[tuple[str, int]]) -> str:
    return ",".join(f"{t}@{m}" for t, m in tables)


def _tags(tables: list[tuple[str, int]]) -> dict[str, str]:
    return {"mlplatform/trigger": "landing", "mlplatform/files": ",".join(sorted({t for t, _ in tables}))}


def _day_groups(by_day: dict[str, list[tuple[str, int]]], ranges: bool) -> list[list[str]]:
    """Each day alone, or runs of consecutive days whose new files are of the same tables."""
    groups: list[list[str]] = []
    for day in sorted(by_day):
        if (ranges and groups and next_day(groups[-1][-1]) == day
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
    name="landing_sensor",
    jobs=[raw_daily_job, raw_reference_job],
    minimum_interval_seconds=5,
    default_status=sensor_status(),
    description="New or re-delivered landing files -> runs of their raw partitions (one run per day).",
)
def landing_sensor(context: dg.SensorEvaluationContext, state: PlatformState):
    zone = state.landing
    plan = plan_landing_runs(zone, json.loads(context.cursor) if context.cursor else {},
                             already_stored(context.instance, state))
    context.update_cursor(json.dumps(plan.seen, sort_keys=True))
    if not plan.run_requests:
        return dg.SkipReason(f"no new landing files ({len(plan.seen)} already requested)")
    return plan.run_requests
