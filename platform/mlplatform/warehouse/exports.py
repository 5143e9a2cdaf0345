"""Parquet exports of the warehouse tables other stages read (Feast, training, serving).

Readers never open the warehouse (DuckDB's file has one writer at a time; PostgreSQL's tables
need a connection every reader would have to be given). A model declares its export
in dbt (`meta: {export: <date column>}` to export by day, or `export: whole`); after each build the
built days are written to `warehouse/exports/<model>/date=<day>/data.parquet` (or
`<model>/data.parquet`), each file atomically, with the lake's layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mlplatform.ingest.lake import Lake
from mlplatform.warehouse.backends import Warehouse

WHOLE = "whole"


@dataclass(frozen=True)
class ExportSpec:
    model: str
    partition_column: str | None  # None: exported whole
    # A model whose build for day D also rewrites the N days before it (labels that mature later:
    # `meta.export_lookback_days`) has those days exported again too.
    lookback_days: int = 0


def export_specs(manifest_path: Path, models: Iterable[str] | None = None) -> list[ExportSpec]:
    """The exports the dbt models declare (limited to `models` when given)."""
    manifest = json.loads(Path(manifest_path).read_text())
    wanted = set(models) if models is not None else None
    specs = []
    for node in manifest["nodes"].values():
        meta = node.get("config", {}).get("meta", {})
        export = meta.get("export")
        if node["resource_type"] != "model" or not export:
            continue
        if wanted is None or node["name"] in wanted:
            specs.append(ExportSpec(node["name"], None if export == WHOLE else export,
                                    int(meta.get("export_lookback_days", 0))))
    return sorted(specs, key=lambda s: s.model)


# Days fetched per query: an export holds about a month of a model's rows at a time, not the
# range (a year of `replay --scale 30` is 10 million rows). The models are written day by day,
# so DuckDB's per-row-group min/max skips the rest of the table for each chunk.
CHUNK_DAYS = 31


def export_tables(warehouse: Warehouse, exports: Lake, specs: Iterable[ExportSpec],
                  days: list[str] | None) -> Mapping[str, int]:
    """Write each spec's rows (for `days`, or every day) to Parquet; returns rows written per model."""
    written: dict[str, int] = {}
    for spec in specs:
        if spec.partition_column is None:
            table = warehouse.select(f"select * from {spec.model}")
            exports.write(spec.model, table)
            written[spec.model] = table.num_rows
            continue
        if days is not None and spec.lookback_days:
            first = (date.fromisoformat(min(days)) - timedelta(days=spec.lookback_days)).isoformat()
            export_days = sorted(set(days) | set(warehouse.select(
                f"select distinct cast({spec.partition_column} as varchar) as day from {spec.model} "
                f"where {spec.partition_column} between %s and %s", [first, max(days)]).column("day").to_pylist()))
        else:
            export_days = days if days is not None else warehouse.select(
                f"select distinct cast({spec.partition_column} as varchar) as day from {spec.model} order by 1"
            ).column("day").to_pylist()
        written[spec.model] = 0
        for start in range(0, len(export_days), CHUNK_DAYS):
            chunk = export_days[start:start + CHUNK_DAYS]
            table = warehouse.select(f"select * from {spec.model} where {spec.partition_column} "
                                     "between %s and %s", [min(chunk), max(chunk)])
            column = pc.cast(table[spec.partition_column], pa.string())
            for day in chunk:
                exports.write(spec.model, table.filter(pc.equal(column, day)), day)
            written[spec.model] += table.num_rows
    return written
