"""The CDNOW purchases as a feed: one file a day, the day's purchases in the source's order.

The source is `lifetimes/datasets/CDNOW_master.txt` (whitespace separated: customer id, date
YYYYMMDD, number of CDs, dollar value), read from the installed package without importing it (its
import loads autograd and scipy). A customer may buy more than once a day: `purchase_number` counts
a customer's purchases of the day in source order, so each row has a key. The same day always gives
the same bytes.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from datetime import date
from functools import cache
from pathlib import Path

HEADER = b"customer_id,purchase_date,purchase_number,number_of_cds,dollar_value\n"


def source_file() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the lifetimes package is not installed: `pip install lifetimes==0.11.3`")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"


@cache
def _days() -> dict[date, bytes]:
    by_day: dict[date, list[bytes]] = defaultdict(list)
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for line in source_file().read_bytes().decode().splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        customer, day, cds, dollars = fields
        seen[(customer, day)] += 1
        when = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        by_day[when].append(f"{customer},{when.isoformat()},{seen[(customer, day)]},{cds},{dollars}\n".encode())
    return {day: b"".join(lines) for day, lines in by_day.items()}


def daily_file(table: str, day: date, scale: int = 1) -> bytes:
    """The day's purchases (just the header on a day without any)."""
    if table != "purchases":
        raise ValueError(f"{table!r} is not a daily table of customer spend (it has: purchases)")
    if scale != 1:
        raise ValueError("customer spend has no synthetic copies: replay it at --scale 1")
    return HEADER + _days().get(day, b"")


def reference_file(table: str, scale: int = 1) -> bytes:
    raise ValueError(f"customer spend has no reference tables (asked for {table!r})")
