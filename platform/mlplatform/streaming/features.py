"""The same-day features, computed one departure at a time, exactly as the dbt models
`feat_origin_departures` and `feat_plane_departures` compute them from the end-of-day file.

Per origin airport, after each departure: the mean delay of its last 10 and last 30 departures and
the share of the last 10 that left more than 15 minutes late. Per plane: the delay of its latest
departure. A row holds from its departure (`event_timestamp`) until the entity's next one, so a
flight scored `lead` minutes before it leaves reads only departures that had happened by then.

`SameDayState` is the consumer's whole memory (it is saved with the consumer's position): apply an
event to it, and it says which rows changed, or why the event is set aside.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from mlplatform.streaming.events import DUPLICATE, FROM_THE_FUTURE, OUT_OF_ORDER, BadEvent, Departure

SHORT_WINDOW, LONG_WINDOW = 10, 30
DELAYED_MINUTES = 15
ORIGIN_FEATURES = ("mean_delay_last_10", "delayed_share_last_10", "mean_delay_last_30")
PLANE_FEATURES = ("last_dep_delay",)
ORIGIN_KEY, PLANE_KEY = "origin_code", "tail_number"
# Feast names: the push sources the consumer writes to, the views they feed.
ORIGIN_PUSH_SOURCE, PLANE_PUSH_SOURCE = "origin_departures_push", "plane_departures_push"
ORIGIN_VIEW, PLANE_VIEW = "origin_departures", "plane_departures"
# An event this far ahead of the newest accepted one is refused: accepted, it would make every
# real event after it look out of order.
MAX_AHEAD = timedelta(hours=6)
# Flight keys remembered against duplicates: older events are refused as out of order anyway.
REMEMBER = timedelta(days=2)


def origin_row(origin: str, at: datetime, delays: deque[int]) -> dict[str, Any]:
    short = list(delays)[-SHORT_WINDOW:]
    return {ORIGIN_KEY: origin, "event_timestamp": at,
            "mean_delay_last_10": sum(short) / len(short),
            "delayed_share_last_10": sum(d > DELAYED_MINUTES for d in short) / len(short),
            "mean_delay_last_30": sum(delays) / len(delays)}


@dataclass
class SameDayState:
    # origin -> the delays of its last LONG_WINDOW departures, oldest first
    origin_delays: dict[str, deque[int]] = field(default_factory=dict)
    # entity kind and key -> the (departure time, flight key) of its newest accepted event
    latest: dict[str, tuple[str, str]] = field(default_factory=dict)
    # flight key -> its departure time, for the flights of the last REMEMBER
    seen: dict[str, str] = field(default_factory=dict)
    watermark: str | None = None  # the newest accepted departure time (ISO, UTC)

    def apply(self, event: Departure) -> list[tuple[str, dict[str, Any]]]:
        """Take the event into the state; return the (view, row) pairs it changed. Raises BadEvent
        (and changes nothing) for a duplicate, an out-of-order event or one from the future."""
        at = _iso(event.actual_departure_utc)
        if event.flight_id in self.seen:
            raise BadEvent(DUPLICATE, f"{event.flight_id} departed already (at {self.seen[event.flight_id]})")
        if self.watermark and event.actual_departure_utc > _parse(self.watermark) + MAX_AHEAD:
            raise BadEvent(FROM_THE_FUTURE, f"{event.flight_id} departs at {at}, more than {MAX_AHEAD} after "
                                            f"the newest departure so far ({self.watermark})")
        origin_key = f"origin:{event.origin}"
        plane_key = f"plane:{event.tail_number}" if event.tail_number else None
        for key in (origin_key, plane_key):
            newest = self.latest.get(key) if key else None
            if newest and (at, event.flight_id) < newest:
                raise BadEvent(OUT_OF_ORDER, f"{event.flight_id} departs at {at}, before {newest[1]} at "
                                             f"{newest[0]}, already applied for {key.replace(':', ' ')}")
        delays = self.origin_delays.setdefault(event.origin, deque(maxlen=LONG_WINDOW))
        delays.append(event.dep_delay_minutes)
        self.latest[origin_key] = (at, event.flight_id)
        changed = [(ORIGIN_VIEW, origin_row(event.origin, event.actual_departure_utc, delays))]
        if plane_key:
            self.latest[plane_key] = (at, event.flight_id)
            changed.append((PLANE_VIEW, {PLANE_KEY: event.tail_number, "event_timestamp": event.actual_departure_utc,
                                         "last_dep_delay": float(event.dep_delay_minutes)}))
        self.seen[event.flight_id] = at
        if self.watermark is None or at > self.watermark:
            self.watermark = at
            self._forget_before(event.actual_departure_utc - REMEMBER)
        return changed

    def _forget_before(self, moment: datetime) -> None:
        cutoff = _iso(moment)
        if self.seen and min(self.seen.values()) < cutoff:
            self.seen = {k: v for k, v in self.seen.items() if v >= cutoff}

    # --- saved with the consumer's position --------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"origin_delays": {k: list(v) for k, v in self.origin_delays.items()},
                "latest": {k: list(v) for k, v in self.latest.items()},
                "seen": self.seen, "watermark": self.watermark}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "SameDayState":
        if not data:
            return cls()
        return cls({k: deque(v, maxlen=LONG_WINDOW) for k, v in data["origin_delays"].items()},
                   {k: tuple(v) for k, v in data["latest"].items()}, dict(data["seen"]), data["watermark"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
