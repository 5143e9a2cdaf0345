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


def materialize(store: FeatureStore, service_name: str, start: datetime, end: datetime,
                full: bool = False) -> Materialized:
    """Write the newest values of [start, end) into the online store.

    The online store keeps one value per entity, so a day older than what a view already holds
    would overwrite newer values: such a view is left alone (reported as superseded) unless
    `full`, which rewrites everything from the first day up to `end`.
    """
    done = Materialized()
    # Feast's materialization window includes its end; a day's ends just before the next midnight,
    # whose rows (the next day's first weather hour, its delay statistics) belong to the next day.
    end = end - timedelta(microseconds=1)
    for view in service_views(store, service_name):
        if _is_reference(view):
            store.materialize(start_date=REFERENCE_START, end_date=end, feature_views=[view.name])
            done.views.append(view.name)
            continue
        newest = view.most_recent_end_time
        if not full and newest is not None and newest >= end:
            done.superseded.append(view.name)
            continue
        store.materialize(start_date=REFERENCE_START if full else start, end_date=end,
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


@dataclass
class SkewReport:
    compared: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.compared > 0 and not self.mismatches


def _same(a: Any, b: Any, tolerance: float) -> bool:
    a_missing, b_missing = pd.isna(a), pd.isna(b)
    if a_missing or b_missing:
        return bool(a_missing and b_missing)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(a)))
    return a == b


def compare_online_offline(store: FeatureStore, service_name: str, exports: Lake, days: list[str],
                           sample_size: int = 20, tolerance: float = 1e-9, seed: int = 0) -> SkewReport:
    """Sample entities of the given days, read their online features and their offline features as
    of the same timestamp (the entity's latest event), and list every value that differs."""
    report = SkewReport()
    for view in service_views(store, service_name):
        rows = source_rows(exports, view, days)
        if rows.empty:
            continue
        keys = list(view.join_keys)
        latest = rows.sort_values(EVENT_TIMESTAMP).groupby(keys, as_index=False).tail(1)
        sample = latest.sample(n=min(sample_size, len(latest)), random_state=seed)
        refs = [f"{view.name}:{f.name}" for f in view.features]
        online = store.get_online_features(features=refs, entity_rows=sample[keys].to_dict("records"),
                                           full_feature_names=True).to_df()
        offline = store.get_historical_features(entity_df=sample[[*keys, EVENT_TIMESTAMP]].reset_index(drop=True),
                                                features=refs, full_feature_names=True).to_df()
        merged = online.merge(offline, on=keys, suffixes=("_online", "_offline"))
        for _, row in merged.iterrows():
            for f in view.features:
                name = f"{view.name}__{f.name}"
                report.compared += 1
                if not _same(row[f"{name}_online"], row[f"{name}_offline"], tolerance):
                    report.mismatches.append({"feature": name, **{k: row[k] for k in keys},
                                              "online": row[f"{name}_online"], "offline": row[f"{name}_offline"]})
    return report
