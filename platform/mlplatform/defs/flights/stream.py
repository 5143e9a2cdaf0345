"""The flights' same-day stream, as the machinery sees it (`hooks.STREAM`): departures and each
origin's schedule as events, the state the consumer keeps, the two views it feeds."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from mlplatform.defs.flights import stream_events
from mlplatform.defs.flights.stream_state import GRAINS, SameDayState
from mlplatform.streaming.events import StreamView, TimedEvent


class FlightStream:
    views = tuple(StreamView(g.view, g.push_source, g.model, g.key, g.features) for g in GRAINS)

    @staticmethod
    def parse(payload: str | bytes) -> stream_events.Departure | stream_events.Schedule:
        return stream_events.parse(payload)

    @staticmethod
    def state(saved: dict[str, Any] | None) -> SameDayState:
        return SameDayState.from_dict(saved)

    @staticmethod
    def day_events(day: date) -> list[TimedEvent]:
        """Each origin's schedule at the local midnight, then the departures of the local day at
        their actual departure time."""
        start, end = stream_events.local_midnight(day), stream_events.local_midnight(day + timedelta(days=1))
        return ([TimedEvent(start, s.to_json()) for s in stream_events.day_schedules(day)]
                + [TimedEvent(d.actual_departure_utc, d.to_json())
                   for d in stream_events.departures_between(start, end)])


STREAM = FlightStream()
