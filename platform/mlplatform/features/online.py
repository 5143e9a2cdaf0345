"""The online store: materializing built days into it, and checking it against the offline store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlplatform.faults import crash_point
from mlplatform.features.service import EVENT_TIMESTAMP
from mlplatform.ingest.lake import Lake

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

# Where the reference views' rows start: long before the data's first day.
REFERENCE_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


def service_views(store: FeatureStore, service_name: str) -> list[FeatureView]:
    """The batch feature views a service reads (on-demand views have nothing to materialize)."""
    names = {p.name for p in store.get_feature_service(service_name).feature_view_projections}
    return [fv for fv in store.list_feature_views() if fv.name in names]


def _is_reference(view: FeatureView) -> bool:
    return not view.batch_source.path.endswith("date=*/data.parquet")


@dataclass
class Materialized:
    views: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    rebuilt: dict[str, str] = field(default_factory=dict)  # view -> why it was rewritten from the first day


def materialize(store: FeatureStore, service_name: str, start: datetime, end: datetime,
                full: bool = False, exports: Lake | None = None) -> Materialized:
    """Write the newest values of [start, end) into the online store.

    The online store keeps one value per entity, so a day older than what a view already holds
    would overwrite newer values: such a view is left alone (reported as superseded) unless
    `full`, which rewrites everything from the first day up to `end`. With `exports` (the offline
    store), a view that has lost rows it held (`lost_rows`) is rewritten from the first day too.
    """
    done = Materialized()
    # Feast's materialization window includes its end; a day's ends just before the next midnight,
    # whose rows (the next day's first hourly rows, its daily statistics) belong to the next day.
    end = end - timedelta(microseconds=1)
    for view in service_views(store, service_name):
        if _is_reference(view):
            store.materialize(start_date=REFERENCE_START, end_date=end, feature_views=[view.name])
            done.views.append(view.name)
            continue
        newest = view.most_recent_end_time
        lost = None if full or newest is None else lost_rows(store, view, exports)
        if lost:
            # The registry says these days are online, the store no longer holds them (Redis restarted
            # empty, an evicted key): everything is written again from the offline store.
            done.rebuilt[view.name] = lost
        elif not full and newest is not None and newest >= end:
            done.superseded.append(view.name)
            continue
        store.materialize(start_date=REFERENCE_START if full or lost else start, end_date=end,
                          feature_views=[view.name])
        done.views.append(view.name)
        crash_point("online_write")  # some views written, others not
    return done


def source_rows(exports: Lake, view: FeatureView, days: list[str] | None) -> pd.DataFrame:
    table = view.batch_source.name
    if _is_reference(view):
        return pq.read_table(exports.path(table)).to_pandas()
    frames = [pq.read_table(exports.path(table, d)).to_pandas() for d in days if exports.path(table, d).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _same(a: Any, b: Any, tolerance: float) -> bool:
    a_missing, b_missing = pd.isna(a), pd.isna(b)
    if a_missing or b_missing:
        return bool(a_missing and b_missing)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(a)))
    return a == b


def materialized_latest(view: FeatureView, exports: Lake, last_interval_only: bool = False) -> pd.DataFrame:
    """What the online store should hold for `view`: each entity's newest offline row within the
    windows materialized so far (Feast's `materialization_intervals`; the last one only, if asked).
    Read with DuckDB over the view's Parquet source, only the days those windows cover."""
    import duckdb

    intervals = list(view.materialization_intervals)
    if not intervals:
        return pd.DataFrame()
    if last_interval_only:
        intervals = intervals[-1:]
    first, last = min(i[0] for i in intervals), max(i[1] for i in intervals)
    keys = ", ".join(f'"{k}"' for k in view.join_keys)
    table = view.batch_source.name
    if _is_reference(view):
        source, days = f"read_parquet('{exports.path(table)}')", ""
    else:
        source = f"read_parquet('{exports.glob(table)}', hive_partitioning = true)"
        # Partition pruning: a day's rows carry event times within a day of its date.
        days = (f"and date >= '{(first - timedelta(days=2)).date().isoformat()}' "
                f"and date <= '{(last + timedelta(days=2)).date().isoformat()}'")
    query = (f"select * from {source} where {EVENT_TIMESTAMP} >= ? and {EVENT_TIMESTAMP} <= ? {days} "
             f"qualify row_number() over (partition by {keys} order by {EVENT_TIMESTAMP} desc) = 1")
    try:
        return duckdb.connect().execute(query, [first, last]).df()
    except duckdb.IOException:  # no file of the view yet
        return pd.DataFrame()


@dataclass
class OnlineReport:
    """The online store against what it should hold: sampled entities, those it lacks, and values
    that differ from the offline store's newest."""
    compared: int = 0
    entities: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.compared > 0 and not self.missing and not self.stale


def _online_rows(store: FeatureStore, view: FeatureView, expected: pd.DataFrame) -> pd.DataFrame:
    keys = list(view.join_keys)
    refs = [f"{view.name}:{f.name}" for f in view.features]
    online = store.get_online_features(features=refs, entity_rows=expected[keys].to_dict("records"),
                                       full_feature_names=True).to_df()
    return online.rename(columns={f"{view.name}__{f.name}": f.name for f in view.features})


def check_online(store: FeatureStore, service_name: str, exports: Lake, sample_size: int = 50,
                 seed: int = 0, tolerance: float = 1e-9) -> OnlineReport:
    """For a sample of the entities each view should hold online, whether it holds them, with the
    offline store's newest values."""
    report = OnlineReport()
    for view in service_views(store, service_name):
        expected = materialized_latest(view, exports)
        if expected.empty:
            continue
        expected = expected.sample(n=min(sample_size, len(expected)), random_state=seed).reset_index(drop=True)
        online = _online_rows(store, view, expected)
        names = [f.name for f in view.features]
        keys = list(view.join_keys)
        for (_, want), (_, got) in zip(expected.iterrows(), online.iterrows()):
            report.entities += 1
            entity = {k: want[k] for k in keys}
            if all(pd.isna(got[n]) for n in names) and not all(pd.isna(want[n]) for n in names):
                report.missing.append({"view": view.name, **entity})
                continue
            for name in names:
                report.compared += 1
                if not _same(got[name], want[name], tolerance):
                    report.stale.append({"feature": f"{view.name}__{name}", **entity,
                                         "online": got[name], "offline": want[name]})
    return report


def lost_rows(store: FeatureStore, view: FeatureView, exports: Lake | None, sample_size: int = 20) -> str | None:
    """Why the online store has lost rows of `view` it held, or None: a sample of the entities of the
    last window materialized, looked up; an entity with no value at all where the offline store has
    one was lost. A cheap probe (one window's files): a wiped store shows at once."""
    if exports is None:
        return None
    expected = materialized_latest(view, exports, last_interval_only=True)
    if expected.empty:
        return None
    expected = expected.sample(n=min(sample_size, len(expected)), random_state=0).reset_index(drop=True)
    online = _online_rows(store, view, expected)
    names = [f.name for f in view.features]
    gone = sum(1 for (_, want), (_, got) in zip(expected.iterrows(), online.iterrows())
               if all(pd.isna(got[n]) for n in names) and not all(pd.isna(want[n]) for n in names))
    return f"{gone} of {len(expected)} sampled entities were missing online" if gone else None
