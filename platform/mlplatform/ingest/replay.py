"""Replays a use case's data into the landing zone, as if each day had just arrived.

The first replay delivers the reference tables; each call then delivers the next days, one file per
daily table per day. A cursor (`landing/_replay.json`) remembers the last day delivered, so
re-landing a day is a no-op, and each file is written aside and renamed, so a sensor watching the
landing zone never sees half a file; each file's manifest (size, rows, checksum) follows it.

Given a topic, the replay is also the use case's same-day stream: before a day's files land (at the
day's end), the day's events (its hooks' `STREAM.day_events`) are published at their time on the
day's clock, spread over `every` seconds when given. The cursor remembers the last day published, so
a replay killed between the events and the files does not publish them twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Protocol

from mlplatform.partitions import FIRST_DAY, LAST_DAY
from mlplatform.usecases import active
from mlplatform.faults import crash_point
from mlplatform.ingest.files import write_bytes_atomically
from mlplatform.ingest.landing import LandingZone

if TYPE_CHECKING:
    from mlplatform.streaming.topic import Topic


class Shift(Protocol):
    """A use case's injected change of its data, from its hooks' `parse_shift(text)`."""

    def apply_to(self, table: str, data: bytes) -> bytes: ...


def parse_shift(text: str) -> Shift:
    """The enabled use case's shift named by `text`; ReplayError when it has none or cannot read it."""
    use_case = active()
    parse = getattr(use_case.module, "parse_shift", None)
    if parse is None:
        raise ReplayError(f"--shift {text}: the use case {use_case.name!r} defines no shifts "
                          f"(no parse_shift in {use_case.hooks})")
    try:
        return parse(text)
    except ValueError as err:
        raise ReplayError(str(err)) from None



def cursor_file() -> str:
    """The cursor of the use case this process serves: use cases share the landing zone (a folder
    per table), and each replays its own calendar."""
    return f"_{active().key_prefix}replay.json"


class ReplayError(ValueError):
    """A replay request that cannot be served (a day outside the data, a bad count)."""


@dataclass
class ReplayResult:
    reference_tables: list[str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    landed_through: date | None = None

    def summary(self) -> str:
        parts = []
        if self.reference_tables:
            parts.append(f"reference tables {', '.join(self.reference_tables)}")
        if self.days:
            span = str(self.days[0]) if len(self.days) == 1 else f"{self.days[0]} .. {self.days[-1]}"
            parts.append(f"{len(self.days)} day(s) {span}")
        landed = "landed " + " and ".join(parts) if parts else "nothing new to land"
        return f"{landed}; landed through {self.landed_through or 'no day yet'}"


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"{text!r} is not a date: write it YYYY-MM-DD") from None


class Replayer:
    """Lands the feed; at `scale` K > 1, K times the rows of its daily files (the use case's feed decides how), for benchmarks.
    A landing zone keeps the scale it was first replayed at."""

    def __init__(self, zone: LandingZone, scale: int = 1, topic: Topic | None = None, shift: Shift | None = None):
        if not isinstance(scale, int) or scale < 1:
            raise ReplayError(f"--scale must be a whole number, 1 or more (got {scale})")
        self.zone = zone
        self.use_case = active()
        self.scale = scale
        # The stream carries the real events only: a scaled replay (benchmarks) publishes none.
        self.topic = topic if scale == 1 else None
        # Days landed with an injected shift (the use case's `shifts`): their files only. The stream
        # carries real events, and these days' events are not the real ones.
        self.shift = shift
        if shift is not None:
            self.topic = None
        self.cursor_path = zone.root / cursor_file()

    def _cursor(self) -> dict:
        return json.loads(self.cursor_path.read_text()) if self.cursor_path.exists() else {}

    def landed_through(self) -> date | None:
        value = self._cursor().get("landed_through")
        return date.fromisoformat(value) if value else None

    def events_through(self) -> date | None:
        value = self._cursor().get("events_through")
        return date.fromisoformat(value) if value else None

    def _write_cursor(self, landed_through: date | None, events_through: date | None = None) -> None:
        events_through = events_through or self.events_through()
        write_bytes_atomically(self.cursor_path, json.dumps({
            "landed_through": landed_through.isoformat() if landed_through else None, "scale": self.scale,
            "events_through": events_through.isoformat() if events_through else None}).encode())

    def next_days(self, *, through: date | None = None, days: int | None = None) -> list[date]:
        """The days a replay would land: after the cursor, through `through` or for `days` days."""
        if (through is None) == (days is None):
            raise ReplayError("say either --through DATE or --days N")
        start = (self.landed_through() or FIRST_DAY - timedelta(days=1)) + timedelta(days=1)
        if through is not None:
            if not FIRST_DAY <= through <= LAST_DAY:
                raise ReplayError(f"{through} is outside the data, which covers {FIRST_DAY} to {LAST_DAY}")
            end = through
        else:
            if days is None or days < 0:
                raise ReplayError(f"--days must be a whole number of days, 0 or more (got {days})")
            end = min(start + timedelta(days=days - 1), LAST_DAY)
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]

    def replay(self, *, through: date | None = None, days: int | None = None, every: float = 0.0,
               on_day: Callable[[date], None] | None = None) -> ReplayResult:
        """Land the reference tables (once) and the next days; `every` seconds apart if given."""
        landed_scale = self._cursor().get("scale", 1)
        if self.cursor_path.exists() and landed_scale != self.scale:
            raise ReplayError(f"this landing zone was replayed at --scale {landed_scale}; "
                              f"go on at that scale, or start from an empty MLPLATFORM_HOME")
        pending = self.next_days(through=through, days=days)
        result = ReplayResult(landed_through=self.landed_through())
        result.reference_tables = self._land_reference()
        for i, day in enumerate(pending):
            if self.topic is not None:
                self.publish_day(day, every)
                crash_point("replay_events_published")  # the day's events out, its files not landed
            elif every and i:
                time.sleep(every)
            for table in self.use_case.daily_tables:
                data = self.use_case.module.daily_file(table, day, self.scale)
                if self.shift is not None:
                    data = self.shift.apply_to(table, data)
                self._land(table, day.isoformat(), data)
            self._write_cursor(day)
            result.days.append(day)
            result.landed_through = day
            if on_day:
                on_day(day)
        return result

    def publish_day(self, day: date, every: float = 0.0) -> None:
        """The day's events, each at its time on a clock that runs the local day [midnight, next
        midnight) in `every` seconds (all at once without)."""
        from mlplatform.streaming.consumer import active_stream
        from mlplatform.streaming.events import local_midnight

        if (self.events_through() or date.min) >= day:
            return
        start = local_midnight(day, self.use_case.calendar.timezone)
        events = active_stream().day_events(day)
        began = time.monotonic()
        while events:
            due = len(events)
            if every:
                elapsed_share = (time.monotonic() - began) / every
                due = sum(1 for e in events if (e.at - start) / timedelta(days=1) <= elapsed_share)
            if due:
                self.topic.publish([e.payload for e in events[:due]])
                events = events[due:]
            if events:
                time.sleep(min(0.05, every / 100))
        if every:
            time.sleep(max(0.0, every - (time.monotonic() - began)))
        self._write_cursor(self.landed_through(), events_through=day)

    def _land_reference(self) -> list[str]:
        # Delivered with the first replay only: a reference file that was since replaced or
        # quarantined is the platform's business, not the feed's.
        if self.cursor_path.exists():
            return []
        landed = []
        for table in self.use_case.reference_tables:
            if self._land(table, None, self.use_case.module.reference_file(table, self.scale)):
                landed.append(table)
        self._write_cursor(None)
        return landed

    def _land(self, table: str, day: str | None, data: bytes) -> bool:
        path = self.zone.file(table, day)
        if path.exists() and path.read_bytes() == data and self.zone.manifest_path(table, day).exists():
            return False
        self.zone.deliver(table, day, data)  # the data, then its manifest
        return True
