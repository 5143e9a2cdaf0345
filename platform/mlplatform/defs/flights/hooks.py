"""What the machinery calls on the flights use case: its data contracts, its feed, the columns its
model derives from a request, and its same-day stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplatform.defs.flights.contracts import CONTRACTS
from mlplatform.defs.flights.feed import daily_file, reference_file

if TYPE_CHECKING:
    import pandas as pd

from mlplatform.defs.flights.api import Flight as Request, lookup
from mlplatform.defs.flights.shifts import Shift
from mlplatform.defs.flights.stream import STREAM

__all__ = ["Request", "lookup", "CONTRACTS", "STREAM", "daily_file", "parse_shift", "reference_file",
           "with_derived", "with_derived_record", "EARLIER_MODEL_CLASS_NAMES"]

# The pyfunc class's name when flights was the only use case: versions registered then still load.
EARLIER_MODEL_CLASS_NAMES = ("FlightDelayModel",)


def parse_shift(text: str) -> Shift:
    """`replay --shift KIND[:ORIGIN]` (defs/flights/shifts.py); ShiftError, a ValueError, names the problem."""
    return Shift.parse(text)


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the model derives from the request (the destination, from the route)."""
    if "dest_code" not in frame and "route" in frame:
        frame = frame.assign(dest_code=frame["route"].astype("string").str.split("-", n=1).str[-1])
    return frame


def with_derived_record(record: dict) -> dict:
    """`with_derived` for one flight given as a dict (the serving path)."""
    route = record.get("route")
    if "dest_code" not in record and isinstance(route, str):
        return {**record, "dest_code": route.split("-", 1)[-1]}
    return record
