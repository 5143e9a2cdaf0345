"""Results in the Dagster UI's own forms: tables it renders inline, not JSON blocks or Markdown
behind a "[Show Markdown]" button. Numbers stay plain floats at the top level of the metadata, so
the asset's Plots tab charts them over time; pictures are links to the MLflow artifacts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg


def _column_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "float":
        return round(float(value), 4)
    if kind == "string" and not isinstance(value, str):
        return str(value)
    return value


def table(rows: Iterable[Mapping[str, Any]], columns: Iterable[str] | None = None) -> dg.MetadataValue:
    """A table from rows of plain values; the columns are the rows' keys in order of first appearance
    (or `columns`), typed from their values, and a row without a column shows it empty."""
    rows = [dict(row) for row in rows]
    names = list(columns) if columns is not None else list(dict.fromkeys(k for row in rows for k in row))
    kinds = {name: _column_type([row.get(name) for row in rows]) for name in names}
    schema = dg.TableSchema(columns=[dg.TableColumn(name=name, type=kinds[name]) for name in names])
    records = [dg.TableRecord({name: _cell(row.get(name), kinds[name]) for name in names}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def keyed_table(by_name: Mapping[str, Mapping[str, Any]], key: str) -> dg.MetadataValue:
    """A table with one row per entry of a mapping, its name in the first column `key`."""
    return table([{key: name, **values} for name, values in by_name.items()])
