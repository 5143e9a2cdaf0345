"""The warehouse dbt builds, on DuckDB (embedded) or PostgreSQL (production), behind one interface.

What differs between the two, and only here:
- writers: DuckDB lets one process write its file, so a writer takes the warehouse lock;
  PostgreSQL takes many writers at once (dbt serializes per model itself).
- the raw lake: dbt-duckdb reads the Parquet lake in place; PostgreSQL cannot, so before dbt builds,
  each lake partition not yet loaded (or loaded from another landing file) is copied into the `raw`
  schema, one transaction per partition, its checksum recorded with it.
- reading a model back (for the Parquet exports, batch predictions, tests): the SQL is the same.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

    from mlplatform.ingest.lake import Lake
    from mlplatform.profile import Profile
    from mlplatform.state import StatePaths


class Warehouse:
    """A connection-per-call view of the warehouse; subclasses say how to connect and write."""

    name: str

    def writer(self, on_wait: Callable[[str], None] | None = None):
        """Held while a process writes the warehouse (dbt, batch predictions)."""
        return nullcontext()

    def load_lake(self, lake: "Lake", tables_daily: dict[str, bool]) -> dict[str, int]:
        """Make the warehouse's raw tables match the lake; returns partitions loaded per table."""
        return {}

    def select(self, sql: str, params: list | None = None) -> pa.Table:
        raise NotImplementedError

    def query(self, sql: str) -> "pd.DataFrame":
        """A query's rows in pandas, timestamps in UTC and dates as datetime64 (tests, status)."""
        return self.select(sql).to_pandas(date_as_object=False)

    def replace_day(self, table: str, day_column: str, day, rows: pa.Table) -> None:
        """Replace `table`'s rows of `day` with `rows`, creating the table from their schema."""
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    name = "duckdb"

    def __init__(self, database: Path, lock_dir: Path):
        self.database, self.lock_dir = database, lock_dir

    def writer(self, on_wait=None):
        from mlplatform.warehouse.lock import warehouse_lock

        return warehouse_lock(self.lock_dir, on_wait=on_wait)

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator:
        import duckdb

        with duckdb.connect(str(self.database), read_only=read_only) as con:
            con.execute("SET TimeZone = 'UTC'")
            yield con

    def select(self, sql, params=None):
        with self._connect(read_only=True) as con:
            result = con.execute(sql.replace("%s", "?"), params or []).arrow()
            return result.read_all() if isinstance(result, pa.RecordBatchReader) else result

    def replace_day(self, table, day_column, day, rows):
        with self._connect(read_only=False) as con:
            con.register("incoming", rows)
            con.execute(f"create table if not exists {table} as select * from incoming limit 0")
            con.execute("begin")
            con.execute(f"delete from {table} where {day_column} = ?", [day])
            con.execute(f"insert into {table} select * from incoming")
            con.execute("commit")


# Arrow types as PostgreSQL columns, and PostgreSQL's type OIDs back to Arrow (for reading).
_PG_COLUMN = [
    (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "smallint"), (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "integer"), (pa.types.is_int64, "bigint"), (pa.types.is_floating, "double precision"),
    (pa.types.is_string, "text"), (pa.types.is_large_string, "text"), (pa.types.is_date, "date"),
]
_ARROW_OF_OID = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float64(),
                 701: pa.float64(), 1700: pa.float64(), 25: pa.string(), 1043: pa.string(), 18: pa.string(),
                 1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC")}


def _numeric_as_float():
    import psycopg2.extensions

    return psycopg2.extensions.new_type(psycopg2.extensions.DECIMAL.values, "NUMERIC_AS_FLOAT",
                                        lambda value, cursor: float(value) if value is not None else None)


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    for test, name in _PG_COLUMN:
        if test(arrow_type):
            return name
    raise TypeError(f"no PostgreSQL column type for Arrow type {arrow_type}")


class PostgresWarehouse(Warehouse):
    name = "postgres"
    LOADED = "_loaded"  # raw.<this>: which landing file each loaded partition came from

    def __init__(self, url: str, raw_schema: str, models_schema: str):
        self.url, self.raw_schema, self.models_schema = url, raw_schema, models_schema

    @contextmanager
    def _connect(self) -> Iterator:
        import psycopg2

        con = psycopg2.connect(self.url, connect_timeout=10,
                               options=f"-csearch_path={self.models_schema},{self.raw_schema} -cTimeZone=UTC")
        try:
            yield con
        finally:
            con.close()

    def select(self, sql, params=None):
        import psycopg2.extensions

        with self._connect() as con, con.cursor() as cur:
            # NUMERIC (an average or a sum of decimals in a model) comes back as Decimal objects, which
            # Arrow will not put in the float64 column this reading gives it: read them as floats.
            psycopg2.extensions.register_type(_numeric_as_float(), cur)
            cur.execute(sql, params or None)
            rows = cur.fetchall()
            columns = list(zip(*rows)) if rows else [[] for _ in cur.description]
            return pa.table({d.name: pa.array(list(values), _ARROW_OF_OID.get(d.type_code, None))
                             for d, values in zip(cur.description, columns)})

    def _replace(self, cur, qualified: str, rows: pa.Table, day_column: str | None, day) -> None:
        """Within the caller's transaction: create the table if needed, delete the day's rows (or
        all, with no day column), copy `rows` in. Other writers of the same table and day wait."""
        import pyarrow.csv as csv

        cur.execute("select pg_advisory_xact_lock(hashtext(%s))", [f"{qualified}/{day}"])
        columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in rows.schema)
        cur.execute(f"create table if not exists {qualified} ({columns})")
        if day_column is None:
            cur.execute(f"delete from {qualified}")
        else:
            cur.execute(f'delete from {qualified} where "{day_column}" = %s', [day])
        if rows.num_rows:
            buffer = io.BytesIO()
            csv.write_csv(rows, buffer)
            buffer.seek(0)
            names = ", ".join(f'"{name}"' for name in rows.column_names)
            cur.copy_expert(f"copy {qualified} ({names}) from stdin with (format csv, header true)", buffer)

    def replace_day(self, table, day_column, day, rows):
        with self._connect() as con:
            with con, con.cursor() as cur:  # one transaction
                self._replace(cur, f"{self.models_schema}.{table}", rows, day_column, day)

    def load_lake(self, lake, tables_daily):
        from mlplatform.ingest.lake import PARTITION_KEY

        loaded_table = f"{self.raw_schema}.{self.LOADED}"
        counts: dict[str, int] = {}
        with self._connect() as con:
            with con, con.cursor() as cur:
                cur.execute(f"create table if not exists {loaded_table} (table_name text, day text, "
                            "source_sha256 text, loaded_at timestamptz default now(), primary key (table_name, day))")
                cur.execute(f"select table_name, day, source_sha256 from {loaded_table}")
                loaded = {(t, d): sha for t, d, sha in cur.fetchall()}
            for table, daily in tables_daily.items():
                counts[table] = 0
                for day in (lake.days(table) if daily else [None]):
                    sha = lake.source_sha256(table, day)
                    if sha is None or loaded.get((table, day or "")) == sha:
                        continue
                    rows = lake.read(table, day)
                    if daily:
                        rows = rows.append_column(PARTITION_KEY, pa.array(
                            [datetime.date.fromisoformat(day)] * rows.num_rows, pa.date32()))
                    with con, con.cursor() as cur:  # a partition and its record in one transaction
                        self._replace(cur, f"{self.raw_schema}.{table}", rows,
                                      PARTITION_KEY if daily else None, day)
                        cur.execute(f"insert into {loaded_table} (table_name, day, source_sha256) values (%s, %s, %s) "
                                    "on conflict (table_name, day) do update set source_sha256 = excluded.source_sha256, "
                                    "loaded_at = now()", [table, day or "", sha])
                    counts[table] += 1
        return counts


def open_warehouse(paths: "StatePaths", profile: "Profile | None" = None) -> Warehouse:
    from mlplatform import profile as profiles

    profile = profile or profiles.current()
    if profile.warehouse == "postgres":
        return PostgresWarehouse(profile.postgres_url, profiles.RAW_SCHEMA, profiles.ANALYTICS_SCHEMA)
    return DuckDBWarehouse(paths.warehouse_db, paths.warehouse)
