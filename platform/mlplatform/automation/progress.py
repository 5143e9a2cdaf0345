"""How far stored days have been carried downstream, read from the Dagster instance.

A day is refreshed when its online features were materialized after its raw tables were stored.
Light on purpose (no code location, and no Dagster until an instance is read): `mlplatform status`
compares the same storage ids read straight from the embedded SQLite tables (instance_tables.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplatform.usecases import active, named

if TYPE_CHECKING:
    import dagster as dg

RAW_DAILY_ASSETS = [f"raw_{t}" for t in active().daily_tables]
# Dagster's statuses of a run not finished, by name (DagsterRunStatus values): the sensors do not
# launch a job's run beside one of these, and `mlplatform status` counts them.
UNFINISHED_STATUSES = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")
# The refresh of a day ends with its online features: newer than them, its raw data is not carried yet.
DAY_DONE_ASSET = named("online_features")


def unrefreshed(stored: list[dict[str, int]], refreshed: dict[str, int]) -> dict[str, int]:
    """Days stored in every daily raw table (`stored`: per table, day -> its newest storage id)
    after the day's last refresh (`refreshed`: day -> storage id): day -> the newest raw id."""
    complete = set.intersection(*(set(s) for s in stored)) if stored else set()
    newest = {d: max(s[d] for s in stored) for d in complete}
    return {d: newest[d] for d in sorted(complete) if newest[d] > refreshed.get(d, -1)}


def _latest_by_partition(instance: dg.DagsterInstance, asset: str) -> dict[str, int]:
    import dagster as dg

    return instance.get_latest_storage_id_by_partition(dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION)


def refreshed_days(instance: dg.DagsterInstance) -> dict[str, int]:
    return _latest_by_partition(instance, DAY_DONE_ASSET)


def stored_unrefreshed(instance: dg.DagsterInstance) -> dict[str, int]:
    """Days whose every daily raw table is stored, stored after the day's last refresh: day -> the
    newest raw storage id. Work left to do, whatever was attempted."""
    return unrefreshed([_latest_by_partition(instance, a) for a in RAW_DAILY_ASSETS], refreshed_days(instance))
