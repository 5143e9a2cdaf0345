"""The landing sensor: each new or re-delivered landing file becomes a run of its raw partition.

The cursor remembers every file it requested, by path and modification time, so a file is requested
once, a re-delivered one (a new modification time) again, and nothing landed while the daemon was
down is missed. A file that breaks its contract is moved to quarantine by its run: it leaves the
landing zone and is never requested again, unless it is delivered anew.
"""

import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from mlplatform.automation.jobs import raw_daily_job, raw_reference_job
from mlplatform.automation.settings import sensor_status
from mlplatform.domain import DAILY_TABLES, REFERENCE_TABLES
from mlplatform.ingest.landing import LandingZone, sha256
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


def already_stored(instance: dg.DagsterInstance, zone: LandingZone) -> Callable[[str, str | None], bool]:
    """Whether the lake holds exactly this landing file already (its raw asset's latest materialization
    came from the same bytes): so a file `mlplatform pipeline` loaded, or one loaded before the
    sensor's cursor was reset, is not loaded twice."""
    def check(table: str, day: str | None) -> bool:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(f"raw_{table}"), asset_partitions=[day] if day else None),
            limit=1).records
        if not records or records[0].asset_materialization is None:
            return False
        stored = records[0].asset_materialization.metadata.get("source_sha256")
        return stored is not None and stored.value == sha256(zone.file(table, day).read_bytes())
    return check


def plan_landing_runs(zone: LandingZone, seen: dict[str, int],
                      stored: Callable[[str, str | None], bool] | None = None) -> LandingPlan:
    """Run requests for the files not requested yet: one run per day, one for the reference tables."""
    files = landed_files(zone)
    new = {rel: info for rel, info in files.items()
           if seen.get(rel) != info[2] and not (stored and rel not in seen and _stored(stored, info))}
    by_day: dict[str | None, list[tuple[str, int]]] = defaultdict(list)
    for rel, (table, day, mtime) in sorted(new.items()):
        by_day[day].append((table, mtime))
    plan = LandingPlan(seen={rel: info[2] for rel, info in files.items()})  # forget files that left
    for day, tables in sorted(by_day.items(), key=lambda item: item[0] or ""):
        run_key = f"{day or 'reference'}:" + ",".join(f"{t}@{m}" for t, m in tables)
        selection = [dg.AssetKey(f"raw_{t}") for t, _ in tables]
        tags = {"mlplatform/trigger": "landing", "mlplatform/files": ",".join(t for t, _ in tables)}
        if day is None:
            plan.run_requests.append(dg.RunRequest(run_key=run_key, job_name=raw_reference_job.name,
                                                   asset_selection=selection, tags=tags))
        else:
            plan.run_requests.append(dg.RunRequest(run_key=run_key, job_name=raw_daily_job.name,
                                                   asset_selection=selection, partition_key=day, tags=tags))
    return plan


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
                             already_stored(context.instance, zone))
    context.update_cursor(json.dumps(plan.seen, sort_keys=True))
    if not plan.run_requests:
        return dg.SkipReason(f"no new landing files ({len(plan.seen)} already requested)")
    return plan.run_requests
