"""How far stored days have been carried downstream, read from the Dagster instance.

A day is refreshed when its online features were materialized after its raw tables were stored.
Light on purpose (no code location): `mlplatform status` reads it too.
"""

from __future__ import annotations

import dagster as dg

from mlplatform.domain import DAILY_TABLES

RAW_DAILY = [dg.AssetKey(f"raw_{t}") for t in DAILY_TABLES]
# The refresh of a day ends with its online features: newer than them, its raw data is not carried yet.
DAY_DONE = dg.AssetKey("online_features")


def refreshed_days(instance: dg.DagsterInstance) -> dict[str, int]:
    return instance.get_latest_storage_id_by_partition(DAY_DONE, dg.DagsterEventType.ASSET_MATERIALIZATION)


def stored_unrefreshed(instance: dg.DagsterInstance) -> dict[str, int]:
    """Days whose every daily raw table is stored, stored after the day's last refresh: day -> the
    newest raw storage id. Work left to do, whatever was attempted."""
    stored = [instance.get_latest_storage_id_by_partition(k, dg.DagsterEventType.ASSET_MATERIALIZATION)
              for k in RAW_DAILY]
    refreshed = refreshed_days(instance)
    complete = set.intersection(*(set(s) for s in stored)) if stored else set()
    newest = {d: max(s[d] for s in stored) for d in complete}
    return {d: newest[d] for d in sorted(complete) if newest[d] > refreshed.get(d, -1)}
