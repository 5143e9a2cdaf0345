"""Builds good and bad landing files from a real replayed day, for the bad-input tests."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import date

from mlplatform.defs.flights import feed

DAY = "2013-01-02"


def good(table: str = "flights", day: str = DAY) -> bytes:
    return feed.daily_file(table, date.fromisoformat(day))


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def _write(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def with_value(data: bytes, column: str, value: str, rows: int | slice = 1) -> bytes:
    """Set `column` to `value` in data row `rows` (1 = first data row) or a slice of data rows."""
    table = _rows(data)
    col = table[0].index(column)
    targets = range(len(table))[rows] if isinstance(rows, slice) else [rows]
    for i in targets:
        if i > 0:
            table[i][col] = value
    return _write(table)


def without_column(data: bytes, column: str) -> bytes:
    table = _rows(data)
    col = table[0].index(column)
    return _write([r[:col] + r[col + 1:] for r in table])


def with_extra_column(data: bytes, column: str = "gate") -> bytes:
    table = _rows(data)
    return _write([table[0] + [column]] + [r + ["B12"] for r in table[1:]])


# Each bad file: how to make it from a good day of flights, and the problem kind it must raise.
BAD_FILES = {
    "empty": (lambda d: b"", "empty"),
    "whitespace only": (lambda d: b"\n\n  \n", "empty"),
    "header only for a table that needs rows": (lambda d: d.split(b"\n", 1)[0] + b"\n", "too_few_rows"),
    "truncated mid-line": (lambda d: d[: len(d) // 2], "truncated"),
    "truncated mid-row with line end": (lambda d: d[: d.rfind(b",", 0, len(d) - 40)] + b"\n", "truncated"),
    "corrupt (gzip bytes)": (lambda d: gzip.compress(d), "corrupt"),
    "corrupt (not UTF-8 bytes)": (lambda d: d[:200] + bytes(range(0x80, 0xa0)) + d[200:], "encoding"),
    "corrupt (NUL bytes)": (lambda d: d[:100] + b"\x00\x00\x00" + d[100:], "corrupt"),
    "not UTF-8 (latin-1)": (lambda d: with_value(d, "tailnum", "NÉ1").decode().encode("latin-1"), "encoding"),
    "unbalanced quote": (lambda d: d.replace(b"\n", b'\n"', 3).replace(b'\n"', b"\n", 2), "malformed"),
    "ragged rows": (lambda d: d.replace(b",EWR,", b",EWR,EXTRA,", 2), "malformed"),
    "missing a column": (lambda d: without_column(d, "dep_delay"), "columns"),
    "an extra column": (lambda d: with_extra_column(d), "columns"),
    "wrongly typed": (lambda d: with_value(d, "dep_delay", "soon"), "types"),
    "fractional integer": (lambda d: with_value(d, "flight", "15.5"), "types"),
    "bad timestamp": (lambda d: with_value(d, "time_hour", "yesterday"), "types"),
    "duplicate keys": (lambda d: d + d.split(b"\n")[1] + b"\n", "duplicate_keys"),
    "rows from another day": (lambda d: d + good(day="2013-01-03").split(b"\n")[1] + b"\n", "wrong_day"),
    "too many rejected rows": (lambda d: with_value(d, "distance", "-5", slice(1, 200)), "too_many_rejects"),
}
