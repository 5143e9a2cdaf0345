"""Injected shifts: days landed with their delays changed, to watch monitoring and alerts react.

`mlplatform replay --shift KIND[:ORIGIN]` lands the days of that replay with every departed flight's
delay changed (only those leaving ORIGIN, when given); the rest of each file is the real data, byte
for byte. Kinds:

    delays-x2        every delay doubled: late flights later (a congested airport's week)
    delays-inverted  what was late leaves on time and what was punctual leaves late: a delay of d
                     minutes becomes 15 - d (the label's threshold is 15; four hours early at
                     most, the contract's bound), so the model's ranking
                     turns against it, as after a sudden change of what makes flights late

The actual departure and arrival times move with the delay, so the file stays consistent (its
contract's checks still pass). Cancelled flights stay cancelled. A day landed again without the
shift is a correction: the landing sensor loads it and the day's refresh rebuilds it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

KINDS = ("delays-x2", "delays-inverted")
LATE_MINUTES = 15  # the label: departed more than this late (dbt: stg_flights.is_delayed)
# The flights contract's bounds on a delay (domain/contracts.py).
MIN_DELAY, MAX_DELAY = -240, 2880


class ShiftError(ValueError):
    pass


def _number(text: str) -> float | None:
    """A field's number, or None for a missing one (empty, or `NA` as the source writes it)."""
    try:
        return float(text)
    except ValueError:
        return None


def _hhmm_plus(hhmm: str, minutes: int) -> str:
    """A local HHMM time moved by some minutes, around the clock."""
    value = int(float(hhmm))
    total = ((value // 100) * 60 + value % 100 + minutes) % 1440
    return str((total // 60) * 100 + total % 60)


@dataclass(frozen=True)
class Shift:
    kind: str
    origin: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Shift":
        kind, _, origin = text.strip().partition(":")
        if kind not in KINDS:
            raise ShiftError(f"--shift {text!r}: the kind must be one of {', '.join(KINDS)} "
                             "(optionally followed by :ORIGIN, an airport code like EWR)")
        origin = origin.strip().upper() or None
        if origin is not None and not (origin.isalpha() and len(origin) == 3):
            raise ShiftError(f"--shift {text!r}: {origin!r} is not an airport code (three letters, like EWR)")
        return cls(kind, origin)

    def __str__(self) -> str:
        return self.kind + (f":{self.origin}" if self.origin else "")

    def delay(self, minutes: float) -> float:
        changed = minutes * 2 if self.kind == "delays-x2" else LATE_MINUTES - minutes
        return min(max(changed, MIN_DELAY), MAX_DELAY)

    def apply_to(self, table: str, data: bytes) -> bytes:
        """A day's file with the shift applied: the flights file's departed flights; others as they are."""
        return self.apply(data) if table == "flights" else data

    def apply(self, flights_csv: bytes) -> bytes:
        """The flights file with the shift applied to its departed flights (from `origin`)."""
        reader = csv.DictReader(io.StringIO(flights_csv.decode()))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in reader:
            before = _number(row["dep_delay"])
            if before is not None and (self.origin is None or row["origin"] == self.origin):
                moved = round(self.delay(before) - before)
                row["dep_delay"] = str(round(before) + moved)
                if _number(row["dep_time"]) is not None:
                    row["dep_time"] = _hhmm_plus(row["dep_time"], moved)
                if (arrival_delay := _number(row["arr_delay"])) is not None:
                    row["arr_delay"] = str(min(max(round(arrival_delay) + moved, MIN_DELAY), MAX_DELAY))
                if _number(row["arr_time"]) is not None:
                    row["arr_time"] = _hhmm_plus(row["arr_time"], moved)
            writer.writerow(row)
        return out.getvalue().encode()
