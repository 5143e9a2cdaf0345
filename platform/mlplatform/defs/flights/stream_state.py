"""The flights' same-day features, computed one departure at a time, exactly as the dbt models
`feat_<grain>_departures` compute them from the end-of-day file.

After each departure, for its origin airport: the mean delay of its last 10 and last 30 departures,
the share of the last 10 that left more than 15 minutes late, and the backlog: how many of the
origin's flights of that local day were scheduled to leave by then and have not left (cancelled
ones included), from the day's schedule event and the departures so far. For its plane: the delay
of the plane's latest departure from New York. A row holds from its departure (`event_timestamp`)
until the entity's next one, so a flight scored `lead` minutes before it leaves reads only
departures that had happened by then.

`SameDayState` is the consumer's whole memory (it is saved with the consumer's position): apply an
event to it, and it says which rows changed, or why the event is set aside.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlplatform.defs.flights.stream_events import Departure, Schedule, local_day, local_midnight
from mlplatform.streaming.events import DUPLICATE, FROM_THE_FUTURE, OUT_OF_ORDER, BadEvent, iso_utc, parse_utc

SHORT_WINDOW, LONG_WINDOW = 10, 30
DELAYED_MINUTES = 15
WINDOW_FEATURES = ("mean_delay_last_10", "delayed_share_last_10", "mean_delay_last_30")
BACKLOG_FEATURES = ("backlog",)
PLANE_FEATURES = ("last_dep_delay",)


@dataclass(frozen=True)
class Grain:
    """An entity the same-day features hang off, and its names in Feast and dbt."""

    name: str       # origin, carrier, destination, plane
    key: str        # the join key column
    attribute: str  # the Departure field that holds it
    features: tuple[str, ...] = WINDOW_FEATURES

    @property
    def view(self) -> str:
        return f"{self.name}_departures"

    @property
    def push_source(self) -> str:
        return f"{self.view}_push"

    @property
    def model(self) -> str:  # the dbt model
        return f"feat_{self.view}"


# A grain of sparse departures (a carrier, a destination) would need windows bounded in time to be
# computed alike by the stream and by dbt's day-partitioned models; the airports leave hundreds of
# flights a day, so two days before a partition always hold their last 30.
ORIGIN = Grain("origin", "origin_code", "origin", WINDOW_FEATURES + BACKLOG_FEATURES)
PLANE = Grain("plane", "tail_number", "tail_number", PLANE_FEATURES)
WINDOW_GRAINS = (ORIGIN,)
GRAINS = (*WINDOW_GRAINS, PLANE)
ORIGIN_VIEW, PLANE_VIEW = ORIGIN.view, PLANE.view
# An event this far ahead of the newest accepted one is refused: accepted, it would make every
# real event after it look out of order.
MAX_AHEAD = timedelta(hours=6)
# A day's schedule may come this long before the day starts (the replay sends it at midnight).
SCHEDULE_AHEAD = timedelta(days=2)
# Flight keys remembered against duplicates: older events are refused as out of order anyway.
REMEMBER = timedelta(days=2)


def window_row(grain: Grain, key: str, at: datetime | None, delays: deque[int]) -> dict[str, Any]:
    short = list(delays)[-SHORT_WINDOW:]
    return {grain.key: key, "event_timestamp": at,
            "mean_delay_last_10": sum(short) / len(short),
            "delayed_share_last_10": sum(d > DELAYED_MINUTES for d in short) / len(short),
            "mean_delay_last_30": sum(delays) / len(delays)}


@dataclass
class SameDayState:
    # "grain:key" -> the delays of its last LONG_WINDOW departures, oldest first
    delays: dict[str, deque[int]] = field(default_factory=dict)
    # "grain:key" -> the (departure time, flight key) of its newest accepted event
    latest: dict[str, tuple[str, str]] = field(default_factory=dict)
    # flight key -> its departure time, for the flights of the last REMEMBER
    seen: dict[str, str] = field(default_factory=dict)
    watermark: str | None = None  # the newest accepted departure time (ISO, UTC)
    # "origin:day" -> the day's scheduled departures (ISO, UTC, in order), from its schedule event
    schedules: dict[str, list[str]] = field(default_factory=dict)
    # "origin:day" -> how many flights scheduled that local day have left
    departed: dict[str, int] = field(default_factory=dict)

    def apply(self, event: Departure | Schedule) -> list[tuple[str, dict[str, Any]]]:
        """Take the event into the state; return the (view, row) pairs it changed. Raises BadEvent
        (and changes nothing) for a duplicate, an out-of-order event or one from the future."""
        if isinstance(event, Schedule):
            self._take_schedule(event)
            return []
        at = iso_utc(event.actual_departure_utc)
        if event.flight_id in self.seen:
            raise BadEvent(DUPLICATE, f"{event.flight_id} departed already (at {self.seen[event.flight_id]})")
        if self.watermark and event.actual_departure_utc > parse_utc(self.watermark) + MAX_AHEAD:
            raise BadEvent(FROM_THE_FUTURE, f"{event.flight_id} departs at {at}, more than {MAX_AHEAD} after "
                                            f"the newest departure so far ({self.watermark})")
        keys = {grain: getattr(event, grain.attribute) for grain in GRAINS if getattr(event, grain.attribute)}
        for grain, key in keys.items():
            newest = self.latest.get(f"{grain.name}:{key}")
            if newest and (at, event.flight_id) < newest:
                raise BadEvent(OUT_OF_ORDER, f"{event.flight_id} departs at {at}, before {newest[1]} at "
                                             f"{newest[0]}, already applied for {grain.name} {key}")
        changed = []
        for grain, key in keys.items():
            self.latest[f"{grain.name}:{key}"] = (at, event.flight_id)
            if grain is PLANE:
                changed.append((grain.view, {grain.key: key, "event_timestamp": event.actual_departure_utc,
                                             "last_dep_delay": float(event.dep_delay_minutes)}))
                continue
            delays = self.delays.setdefault(f"{grain.name}:{key}", deque(maxlen=LONG_WINDOW))
            delays.append(event.dep_delay_minutes)
            row = window_row(grain, key, event.actual_departure_utc, delays)
            if grain is ORIGIN:
                row["backlog"] = self._backlog(event, at)
            changed.append((grain.view, row))
        self.seen[event.flight_id] = at
        if self.watermark is None or at > self.watermark:
            self.watermark = at
            self._forget_before(event.actual_departure_utc - REMEMBER)
        return changed

    def _backlog(self, event: Departure, at: str) -> float | None:
        """Count the departure against its scheduled day; the backlog of the local day it left on:
        that day's flights scheduled by `at` less those that have left (None without its schedule)."""
        scheduled_day = f"{event.origin}:{local_day(event.scheduled_departure_utc)}"
        self.departed[scheduled_day] = self.departed.get(scheduled_day, 0) + 1
        today = f"{event.origin}:{local_day(event.actual_departure_utc)}"
        schedule = self.schedules.get(today)
        if schedule is None:
            return None
        return float(bisect_right(schedule, at) - self.departed.get(today, 0))

    def _take_schedule(self, schedule: Schedule) -> None:
        key = f"{schedule.origin}:{schedule.day}"
        if key in self.schedules:
            raise BadEvent(DUPLICATE, f"the schedule of {schedule.origin} for {schedule.day} came already")
        newest = self.latest.get(f"{ORIGIN.name}:{schedule.origin}")
        if newest and local_day(parse_utc(newest[0])) >= schedule.day:
            raise BadEvent(OUT_OF_ORDER, f"the schedule of {schedule.origin} for {schedule.day} came after its "
                                         f"departure {newest[1]} at {newest[0]}, already applied")
        if self.watermark and local_midnight(schedule.day) > parse_utc(self.watermark) + SCHEDULE_AHEAD:
            raise BadEvent(FROM_THE_FUTURE, f"the schedule of {schedule.origin} for {schedule.day} came more than "
                                            f"{SCHEDULE_AHEAD.days} days before the day, the newest departure so far "
                                            f"being at {self.watermark}")
        self.schedules[key] = [iso_utc(m) for m in schedule.scheduled_departures_utc]

    def _forget_before(self, moment: datetime) -> None:
        cutoff = iso_utc(moment)
        if self.seen and min(self.seen.values()) < cutoff:
            self.seen = {k: v for k, v in self.seen.items() if v >= cutoff}
        # A day's counts serve the rows of that day; an origin's late event can still come a while
        # after the watermark passed midnight, so days go with the flight keys.
        first_day = str(local_day(moment))
        for counts in (self.schedules, self.departed):
            for key in [k for k in counts if k.split(":", 1)[1] < first_day]:
                del counts[key]

    # --- saved with the consumer's position --------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"delays": {k: list(v) for k, v in self.delays.items()},
                "latest": {k: list(v) for k, v in self.latest.items()},
                "seen": self.seen, "watermark": self.watermark,
                "schedules": self.schedules, "departed": self.departed}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "SameDayState":
        if not data:
            return cls()
        return cls({k: deque(v, maxlen=LONG_WINDOW) for k, v in data["delays"].items()},
                   {k: tuple(v) for k, v in data["latest"].items()}, dict(data["seen"]), data["watermark"],
                   {k: list(v) for k, v in data.get("schedules", {}).items()}, dict(data.get("departed", {})))
