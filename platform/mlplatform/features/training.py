"""Training sets: a point-in-time join, through Feast, of labeled prediction rows with the feature service.

Each training set is written once, content-addressed, as Parquet with a manifest beside it that
says exactly what went in: the window and its days, the feature service and definitions, the dbt
code, the row count, label rate and a hash of the content. `latest.json` points at the newest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.features.service import EVENT_TIMESTAMP, PREDICTION_KEY, JOIN_KEYS, LABEL, REQUEST_TIMESTAMP
from mlplatform.ingest.files import write_atomically, write_bytes_atomically
from mlplatform.ingest.lake import Lake
from mlplatform.usecases import active

if TYPE_CHECKING:  # pyarrow too is imported where used: the code location's load reads this module
    import pandas as pd
    from feast import FeatureStore

# The dbt model with one row per prediction (the use case's prediction grain), exported by day.
ENTITY_TABLE = active().prediction.model
LATEST = "latest.json"


class TrainingWindowError(ValueError):
    """The requested window cannot make a training set (no labeled rows in it)."""


@dataclass(frozen=True)
class TrainingSet:
    path: Path
    manifest: dict[str, Any]


def matured_days(days: list[str], label_delay_days: int | None = None) -> list[str]:
    """The days whose outcomes are known: those at least `label_delay_days` (the use case's
    `prediction.label_delay_days`) before the newest built day, which is the platform's "now". An
    outcome is never read before it is known, whatever the warehouse holds for it."""
    delay = active().prediction.label_delay_days if label_delay_days is None else label_delay_days
    if not days or delay == 0:
        return list(days)
    from datetime import date, timedelta

    known_through = (date.fromisoformat(max(days)) - timedelta(days=delay)).isoformat()
    return [d for d in days if d <= known_through]


class PredictionContractError(ValueError):
    """The spec names a column of the prediction grain that its dbt model does not export."""


def _prediction_columns(exports: Lake, day: str) -> list[str]:
    """The prediction grain's columns the platform reads (its key, event time, join keys, label),
    each checked against the dbt model's export: a name the spec misspells is named, with the
    field that holds it, instead of failing in Arrow."""
    import pyarrow.parquet as pq

    columns = [PREDICTION_KEY, REQUEST_TIMESTAMP, *JOIN_KEYS, LABEL]
    exported = pq.read_schema(exports.path(ENTITY_TABLE, day)).names
    missing = [c for c in dict.fromkeys(columns) if c not in exported]
    if missing:
        fields = {**{k: "prediction.entity_keys" for k in JOIN_KEYS}, PREDICTION_KEY: "prediction.key",
                  REQUEST_TIMESTAMP: "features.request_time", LABEL: "prediction.label"}
        named = ", ".join(f"{fields[c]} {c!r}" for c in missing)
        raise PredictionContractError(f"the use case's spec names {named}, which its dbt model {ENTITY_TABLE!r} does "
                                      f"not export (its columns: {', '.join(exported)})")
    return columns


def labeled_rows(exports: Lake, first_day: str | None, last_day: str | None,
                    max_rows: int | None = None, seed: int = 0,
                    label_delay_days: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the window whose outcome is known, with their label, join keys and timestamps;
    and the days read. Days whose outcomes have not matured yet (`matured_days`) are left out.

    With `max_rows`, a uniform sample of that many (seeded, so the same window gives the same
    set), drawn before the rows become a DataFrame: what a training set holds, and the memory it
    takes, stay bounded however many rows the window has. `frame.attrs["labeled_rows"]`
    says how many there were before sampling."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlplatform.ml.split import sample_positions

    available = exports.days(ENTITY_TABLE)
    matured = matured_days(available, label_delay_days)
    days = [d for d in matured if (first_day is None or d >= first_day) and (last_day is None or d <= last_day)]
    window = f"{first_day or 'the first day'} .. {last_day or 'the last day'}"
    if not days:
        built = f"{available[0]} .. {available[-1]}" if available else "none"
        known = f"; outcomes known through {matured[-1]}" if matured and matured != available else (
            "; no outcome is known yet" if available and not matured else "")
        raise TrainingWindowError(f"the training window {window} has no labeled rows "
                                  f"(days built in the warehouse: {built}{known})")
    columns = _prediction_columns(exports, days[-1])
    table = pa.concat_tables([pq.read_table(exports.path(ENTITY_TABLE, d), columns=columns) for d in days])
    table = table.filter(pc.is_valid(table[LABEL]))
    if table.num_rows == 0:
        raise TrainingWindowError(f"the training window {window} has no labeled rows")
    labeled = table.num_rows
    sample = sample_positions(labeled, max_rows, seed)
    if sample is not None:
        table = table.take(pa.array(sample))
    frame = table.to_pandas()
    frame[EVENT_TIMESTAMP] = frame[REQUEST_TIMESTAMP]
    frame = frame.sort_values([REQUEST_TIMESTAMP, PREDICTION_KEY]).reset_index(drop=True)
    frame.attrs["labeled_rows"] = labeled
    return frame, days


def prediction_rows(exports: Lake, first_day: str, last_day: str) -> pd.DataFrame:
    """Every row of the prediction grain of the days (what batch scoring and drift read), whether or
    not its outcome is known; the label column is there, null where it is not known yet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    days = [d for d in exports.days(ENTITY_TABLE) if first_day <= d <= last_day]
    if not days:
        raise TrainingWindowError(f"no rows built for {first_day} .. {last_day}")
    columns = _prediction_columns(exports, days[-1])
    frame = pa.concat_tables([pq.read_table(exports.path(ENTITY_TABLE, d), columns=columns) for d in days]).to_pandas()
    frame[EVENT_TIMESTAMP] = frame[REQUEST_TIMESTAMP]
    frame = frame.sort_values([REQUEST_TIMESTAMP, PREDICTION_KEY]).reset_index(drop=True)
    frame.attrs["days"] = days
    return frame


# Rows per point-in-time query. Feast's DuckDB retrieval's peak memory grows with the rows of one
# query; in chunks of this size a million rows take a third less memory in the same time
# (docs/benchmarks.md).
RETRIEVAL_CHUNK_ROWS = 250_000
# The same-day views hold a row per entity and minute, so one query's memory grows with the feature
# rows its time range covers, many more than a day-ahead view's: smaller chunks bound it at about
# the same total time (docs/benchmarks.md, "Cold end to end").
SAME_DAY_RETRIEVAL_CHUNK_ROWS = 25_000


def _join_in_chunks(store: FeatureStore, entities: pd.DataFrame, service_name: str, chunk_rows: int,
                    order: list[str]) -> pd.DataFrame:
    """Feast's point-in-time join of the entity rows with a service, `chunk_rows` at a time, each
    chunk's rows back in `order` (Feast returns them in an order of its own)."""
    service = store.get_feature_service(service_name)
    parts = [store.get_historical_features(entity_df=entities.iloc[start:start + chunk_rows], features=service,
                                           full_feature_names=True).to_df().sort_values(order)
             for start in range(0, max(len(entities), 1), chunk_rows)]
    import pandas as pd

    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def retrieve(store: FeatureStore, rows: pd.DataFrame, service_name: str,
             chunk_rows: int = RETRIEVAL_CHUNK_ROWS) -> pd.DataFrame:
    """Point-in-time join of the rows with every feature of the service, as of each request time,
    in time order. Each row's features depend on that row alone, so the join runs on chunks
    of rows and memory stays bounded however many there are."""
    ordered = rows.sort_values([REQUEST_TIMESTAMP, PREDICTION_KEY]).reset_index(drop=True)
    joined = _join_in_chunks(store, ordered, service_name, chunk_rows, [REQUEST_TIMESTAMP, PREDICTION_KEY])
    leading = [PREDICTION_KEY, EVENT_TIMESTAMP, REQUEST_TIMESTAMP, *JOIN_KEYS, LABEL]
    return joined[leading + sorted(c for c in joined.columns if c not in leading)].reset_index(drop=True)


def retrieve_same_day(store: FeatureStore, rows: pd.DataFrame, lead_minutes: int,
                      service_name: str | None = None, chunk_rows: int = SAME_DAY_RETRIEVAL_CHUNK_ROWS) -> pd.DataFrame:
    """The same-day features of each row as of `lead_minutes` before its request time:
    the prediction key and one column per feature (`<view>__<feature>`). A second point-in-time join,
    at an earlier moment than the day-ahead one, so a live model learns from exactly what the
    stream had pushed online by then."""
    from mlplatform.features.service import LIVE_SERVICE_NAME

    keys = rows[[PREDICTION_KEY, *JOIN_KEYS, REQUEST_TIMESTAMP]].copy()
    import pandas as pd

    keys[EVENT_TIMESTAMP] = keys[REQUEST_TIMESTAMP] - pd.Timedelta(minutes=lead_minutes)
    keys = keys.drop(columns=[REQUEST_TIMESTAMP]).sort_values([EVENT_TIMESTAMP, PREDICTION_KEY]).reset_index(drop=True)
    joined = _join_in_chunks(store, keys, service_name or LIVE_SERVICE_NAME, chunk_rows, [EVENT_TIMESTAMP, PREDICTION_KEY])
    features = sorted(c for c in joined.columns if "__" in c)
    return joined[[PREDICTION_KEY, *features]]


def write_training_set(frame: pd.DataFrame, root: Path, manifest: dict[str, Any]) -> TrainingSet:
    """Write the set under a folder named by its content hash, with its manifest; point latest at it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    staging = root / ".staging.parquet"
    write_atomically(staging, lambda tmp: pq.write_table(table, tmp))
    content_hash = hashlib.sha256(staging.read_bytes()).hexdigest()
    folder = root / content_hash[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "training_set.parquet"
    staging.replace(path)
    label_rate = float(frame[LABEL].mean())
    manifest = {**manifest, "row_count": len(frame), "label_rate": round(label_rate, 6),
                "content_hash": content_hash, "path": str(path),
                "columns": list(frame.columns), "created_at": datetime.now(timezone.utc).isoformat()}
    write_bytes_atomically(folder / "manifest.json", json.dumps(manifest, indent=2).encode())
    write_bytes_atomically(root / LATEST, json.dumps({"manifest": str(folder / "manifest.json")}).encode())
    return TrainingSet(path, manifest)


def latest_manifest(root: Path) -> dict[str, Any] | None:
    pointer = root / LATEST
    if not pointer.exists():
        return None
    return json.loads(Path(json.loads(pointer.read_text())["manifest"]).read_text())
