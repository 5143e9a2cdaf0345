"""What the machinery knows of a use case's same-day stream: the contract its hooks fulfil.

A use case with a stream gives its hooks module a `STREAM` (`SameDayStream`): how to read an event,
the state its consumer keeps, the Feast views it feeds (`StreamView`) and what the replay publishes
for a day. The machinery moves the events (topic, consumer, push, skew check) and knows none of
their fields. `BadEvent` says why an event is set aside, with one of `REASONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BadEvent(ValueError):
    """An event the consumer set aside; `reason` is one of REASONS, `detail` says what exactly."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


MALFORMED, DUPLICATE, OUT_OF_ORDER, UNKNOWN_ENTITY, FROM_THE_FUTURE = (
    "malformed", "duplicate", "out_of_order", "unknown_entity", "from_the_future")
REASONS = (MALFORMED, DUPLICATE, OUT_OF_ORDER, UNKNOWN_ENTITY, FROM_THE_FUTURE)

# How the stream writes a moment (events, the consumer's state, the rows it produced): UTC to the
# second, so that the text sorts as the time does.
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(ISO_UTC)


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, ISO_UTC).replace(tzinfo=timezone.utc)


def local_midnight(day: date, tz: str) -> datetime:
    """The start of the local day `day` in the time zone `tz`, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


@dataclass(frozen=True)
class StreamView:
    """A Feast feature view the stream feeds through a push source, and the dbt model that computes
    the same rows offline from the end-of-day files (the skew check compares the two)."""

    view: str
    push_source: str
    model: str
    key: str                   # the entity column
    features: tuple[str, ...]


@dataclass(frozen=True)
class TimedEvent:
    """An event as the replay publishes it: at `at` (UTC) on the replayed day's clock."""

    at: datetime
    payload: str


class StreamState(Protocol):
    """The consumer's whole memory, saved with its position in the topic."""

    watermark: str | None  # the newest event time taken (ISO_UTC)

    def apply(self, event: Any) -> list[tuple[str, dict[str, Any]]]:
        """Take the event in; return the (view, row) pairs it changed, each row holding its view's
        key, `event_timestamp` and features. Raises BadEvent, changing nothing, to set it aside."""

    def to_dict(self) -> dict[str, Any]: ...


class SameDayStream(Protocol):
    """A use case's stream (its hooks' `STREAM`)."""

    views: tuple[StreamView, ...]

    def parse(self, payload: str | bytes) -> Any:
        """The event, or BadEvent (malformed, unknown_entity) naming what is wrong with it."""

    def state(self, saved: dict[str, Any] | None) -> StreamState:
        """The consumer's state as saved (`to_dict`), or a fresh one for None."""

    def day_events(self, day: date) -> list[TimedEvent]:
        """What the stream carries for a local day, in publication order (the replay's feed)."""
