"""The raw lake: validated Parquet, one folder per table and, for daily tables, one file per day.

Layout (Hive style, so DuckDB and dbt can prune by day; the key is `date`, since a
feed may already have a `day` column):
    lake/<table>/date=2013-01-31/data.parquet    daily tables
    lake/<table>/data.parquet                    reference tables
    lake/_rejects/<table>/...                    rows that broke a row rule, same layout

Each file is written aside and renamed into place, so re-materializing a partition replaces it
exactly and a failed write leaves the previous version untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlplatform.ingest.files import write_atomically

if TYPE_CHECKING:  # pyarrow is imported where used: the code location's load reads this module
    import pandas as pd
    import pyarrow as pa

DATA_FILE = "data.parquet"
SOURCE_FILE = "source.json"  # beside each data file: the checksum of the landing file it came from
PARTITION_KEY = "date"


@dataclass(frozen=True)
class Lake:
    root: Path

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def path(self, table: str, day: str | None = None) -> Path:
        folder = self.table_dir(table) if day is None else self.table_dir(table) / f"{PARTITION_KEY}={day}"
        return folder / DATA_FILE

    def rejects_path(self, table: str, day: str | None = None) -> Path:
        return Lake(self.root / "_rejects").path(table, day)

    def glob(self, table: str) -> str:
        """The glob that reads every partition of `table` (for DuckDB's read_parquet)."""
        return str(self.table_dir(table) / f"{PARTITION_KEY}=*" / DATA_FILE)

    def write(self, table: str, rows: pa.Table, day: str | None = None) -> Path:
        import pyarrow.parquet as pq

        return write_atomically(self.path(table, day), lambda tmp: pq.write_table(rows, tmp))

    def write_rejects(self, table: str, rejects: pd.DataFrame, day: str | None = None) -> Path | None:
        """Replace the partition's rejects; with none, remove an earlier run's, so they match the data."""
        path = self.rejects_path(table, day)
        if rejects.empty:
            path.unlink(missing_ok=True)
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        table_ = pa.Table.from_pandas(rejects, preserve_index=False)
        return write_atomically(path, lambda tmp: pq.write_table(table_, tmp))

    def write_source(self, table: str, day: str | None, source_sha256: str) -> None:
        path = self.path(table, day).with_name(SOURCE_FILE)
        write_atomically(path, lambda tmp: tmp.write_text(json.dumps({"sha256": source_sha256})))

    def source_sha256(self, table: str, day: str | None = None) -> str | None:
        """The checksum of the landing file the stored partition was loaded from (None: not stored)."""
        path = self.path(table, day).with_name(SOURCE_FILE)
        try:
            return json.loads(path.read_text())["sha256"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def read(self, table: str, day: str | None = None) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self.path(table, day))

    def days(self, table: str) -> list[str]:
        """The days of a daily table present in the lake."""
        folder = self.table_dir(table)
        if not folder.exists():
            return []
        return sorted(p.parent.name.removeprefix(f"{PARTITION_KEY}=")
                      for p in folder.glob(f"{PARTITION_KEY}=*/{DATA_FILE}"))
