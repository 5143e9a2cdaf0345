"""Data contracts: what a landing file must look like before it may enter the lake.

A contract names a table's columns with their types, its key, the day each row belongs to (for daily
tables) and its row rules. Breaking the file's shape (encoding, CSV structure, columns, types, keys, the
day) rejects the whole file; breaking a row rule rejects only that row. Nothing here knows about
its use case: each declares its contracts in its hooks (`CONTRACTS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: contracts are read when the code location loads
    import pandas as pd
    import pyarrow as pa

ColumnType = Literal["int", "float", "string", "timestamp"]


def arrow_type_of(kind: ColumnType) -> pa.DataType:
    """The Arrow type a column of this kind is stored as in the lake."""
    import pyarrow as pa

    return {"int": pa.int64(), "float": pa.float64(), "string": pa.string(),
            "timestamp": pa.timestamp("us", tz="UTC")}[kind]

# Spellings of "no value" in landing files (R writes NA).
NULL_TOKENS = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null"})


@dataclass(frozen=True)
class Column:
    """One column of a table: its type, whether it may be null, and its plausible range."""

    name: str
    type: ColumnType
    description: str = ""
    required: bool = False  # a null here breaks a row rule
    min: float | None = None  # inclusive range; a value outside breaks a row rule
    max: float | None = None
    allowed: frozenset[str] | None = None  # for codes: the accepted values

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type_of(self.type)


@dataclass(frozen=True)
class RowRule:
    """A rule each row must keep; `holds` returns True where a row keeps it (nulls keep it)."""

    name: str
    description: str
    holds: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class TableContract:
    """The contract of one landing table."""

    table: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # For daily tables: the ISO day ("2013-01-31") each row belongs to, from its own columns.
    row_day: Callable[[pd.DataFrame], pd.Series] | None = None
    row_rules: tuple[RowRule, ...] = ()
    min_rows: int = 1
    column_index: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {c.name: c for c in self.columns}
        if len(index) != len(self.columns):
            raise ValueError(f"contract {self.table}: duplicate column names")
        missing = [k for k in self.key if k not in index]
        if missing:
            raise ValueError(f"contract {self.table}: key columns {missing} are not columns")
        object.__setattr__(self, "column_index", index)

    @property
    def is_daily(self) -> bool:
        return self.row_day is not None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def fingerprint(self) -> str:
        """Changes whenever the contract's columns, key or rules change: the assets' code version."""
        parts = [self.table, repr(self.key), str(self.min_rows)]
        parts += [repr((c.name, c.type, c.required, c.min, c.max, sorted(c.allowed or ())))
                  for c in self.columns]
        parts += [f"{r.name}:{r.description}" for r in self.row_rules]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
