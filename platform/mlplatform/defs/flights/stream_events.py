"""The flights' same-day stream, its events: one per flight that left, at its actual departure time,
and one schedule per origin airport and day, published as the day starts.

The feed derives both from the same day files it lands (`departures_between`, `day_schedules`), so
the stream and the end-of-day file never disagree about a flight. An event is a small JSON object;
`parse` turns one back into a `Departure` or a `Schedule`, or says, in a `BadEvent`, what is wrong
with it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from mlplatform.defs.flights import feed
from mlplatform.streaming.events import MALFORMED, UNKNOWN_ENTITY, BadEvent, iso_utc, parse_utc
from mlplatform.streaming.events import local_midnight as _local_midnight
from mlplatform.usecases import load

_CALENDAR = load("flights").calendar
FIRST_DAY, LAST_DAY, TIMEZONE = _CALENDAR.first_day, _CALENDAR.last_day, _CALENDAR.timezone

FIELDS = ("flight_id", "origin", "dest", "tail_number", "scheduled_departure_utc",
          "actual_departure_utc", "dep_delay_minutes", "carrier")
_LOCAL = ZoneInfo(TIMEZONE)


@dataclass(frozen=True)
class Departure:
    flight_id: str
    origin: str
    dest: str
    tail_number: str | None
    scheduled_departure_utc: datetime
    actual_departure_utc: datetime
    dep_delay_minutes: int
    carrier: str

    @property
    def order(self) -> tuple[datetime, str]:
        """Events are ordered by departure time, then flight key (as the dbt models order them)."""
        return (self.actual_departure_utc, self.flight_id)

    def to_json(self) -> str:
        data = asdict(self)
        data["scheduled_departure_utc"] = iso_utc(self.scheduled_departure_utc)
        data["actual_departure_utc"] = iso_utc(self.actual_departure_utc)
        return json.dumps(data, separators=(",", ":"))


SCHEDULE = "schedule"  # the `kind` of a schedule event; a departure has none


@dataclass(frozen=True)
class Schedule:
    """Every departure one origin has scheduled for a local day, cancelled flights included: a
    schedule is published before the day, and a cancellation is not known in advance. With it, the
    consumer knows how many of the day's flights are due, beside how many have left (the backlog)."""

    origin: str
    day: date
    scheduled_departures_utc: tuple[datetime, ...]

    def to_json(self) -> str:
        return json.dumps({"kind": SCHEDULE, "origin": self.origin, "day": self.day.isoformat(),
                           "scheduled_departures_utc": [iso_utc(m) for m in self.scheduled_departures_utc]},
                          separators=(",", ":"))


def flight_key(carrier: str, number: str, origin: str, local_day: date, hhmm: str) -> str:
    """The flight's key, as dbt's `flight_id` macro writes it: UA1545-EWR-20130101-0515."""
    return f"{carrier}{number}-{origin}-{local_day:%Y%m%d}-{int(hhmm):04d}"


# A replay asks for each day four times (the windows of the days around it): parse it once.
@lru_cache(maxsize=8)
def day_departures(day: date) -> tuple[Departure, ...]:
    """Every flight of the day's file that departed (cancelled flights have no event)."""
    rows = csv.DictReader(io.StringIO(feed.daily_file("flights", day).decode()))
    departures = []
    for row in rows:
        if row["dep_delay"] in ("", "NA"):
            continue
        scheduled = parse_utc(row["time_hour"]) + timedelta(minutes=int(row["minute"]))
        delay = int(float(row["dep_delay"]))
        departures.append(Departure(
            flight_id=flight_key(row["carrier"], row["flight"], row["origin"], day, row["sched_dep_time"]),
            origin=row["origin"], dest=row["dest"],
            tail_number=row["tailnum"] if row["tailnum"] not in ("", "NA") else None,
            scheduled_departure_utc=scheduled, actual_departure_utc=scheduled + timedelta(minutes=delay),
            dep_delay_minutes=delay, carrier=row["carrier"]))
    return tuple(departures)


@lru_cache(maxsize=8)
def day_schedules(day: date) -> tuple[Schedule, ...]:
    """The day's schedule of each origin in its file, every flight's scheduled departure in order."""
    rows = csv.DictReader(io.StringIO(feed.daily_file("flights", day).decode()))
    by_origin: dict[str, list[datetime]] = {}
    for row in rows:
        scheduled = parse_utc(row["time_hour"]) + timedelta(minutes=int(row["minute"]))
        by_origin.setdefault(row["origin"], []).append(scheduled)
    return tuple(Schedule(origin, day, tuple(sorted(times))) for origin, times in sorted(by_origin.items()))


def local_day(moment: datetime) -> date:
    return moment.astimezone(_LOCAL).date()


def local_midnight(day: date) -> datetime:
    return _local_midnight(day, TIMEZONE)


def departures_between(start: datetime, end: datetime) -> list[Departure]:
    """Departures with an actual departure in [start, end), in event order. A flight leaves at the
    earliest an hour before its scheduled day and at the latest a day after it, so the flights of
    the days around the window are all that can fall in it."""
    first = max(FIRST_DAY, start.astimezone(_LOCAL).date() - timedelta(days=2))
    last = min(LAST_DAY, end.astimezone(_LOCAL).date() + timedelta(days=1))
    found = [d for i in range((last - first).days + 1)
             for d in day_departures(first + timedelta(days=i)) if start <= d.actual_departure_utc < end]
    return sorted(found, key=lambda d: d.order)


def day_events(day: date) -> list[Schedule | Departure]:
    """What the stream carries for a local day, in order: each origin's schedule, then the day's
    departures (the replay publishes the same, paced by its clock)."""
    return [*day_schedules(day), *departures_between(local_midnight(day), local_midnight(day + timedelta(days=1)))]


def _timestamp(data: dict, name: str) -> datetime:
    value = data[name]
    if not isinstance(value, str):
        raise BadEvent(MALFORMED, f"{name} must be an ISO timestamp, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadEvent(MALFORMED, f"{name}={value!r} is not an ISO timestamp") from None
    if moment.tzinfo is None:
        raise BadEvent(MALFORMED, f"{name}={value!r} has no time zone")
    return moment.astimezone(timezone.utc)


def parse(payload: str | bytes) -> Departure | Schedule:
    """The event's departure or schedule, or BadEvent(malformed / unknown_entity) naming the problem.
    Whether it is a duplicate, out of order or from the future depends on the stream so far: the
    consumer's."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadEvent(MALFORMED, f"not JSON ({err})") from None
    if not isinstance(data, dict):
        raise BadEvent(MALFORMED, f"not a JSON object: {str(payload)[:80]}")
    if "kind" in data:
        if data["kind"] != SCHEDULE:
            raise BadEvent(MALFORMED, f"kind={data['kind']!r} is not an event this stream carries "
                                      f"('{SCHEDULE}', or none for a departure)")
        return _parse_schedule(data)
    missing = [f for f in FIELDS if f not in data]
    if missing:
        raise BadEvent(MALFORMED, f"missing {', '.join(missing)}")
    for name in ("flight_id", "origin", "dest", "carrier"):
        if not isinstance(data[name], str) or not data[name]:
            raise BadEvent(MALFORMED, f"{name} must be a non-empty string, got {data[name]!r}")
    if data["tail_number"] is not None and not isinstance(data["tail_number"], str):
        raise BadEvent(MALFORMED, f"tail_number must be a string or null, got {data['tail_number']!r}")
    delay = data["dep_delay_minutes"]
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise BadEvent(MALFORMED, f"dep_delay_minutes must be a whole number, got {delay!r}")
    scheduled, actual = _timestamp(data, "scheduled_departure_utc"), _timestamp(data, "actual_departure_utc")
    if actual - scheduled != timedelta(minutes=delay):
        raise BadEvent(MALFORMED, f"actual departure {iso_utc(actual)} is not the scheduled {iso_utc(scheduled)} "
                                  f"plus the delay of {delay} minutes")
    departure = Departure(data["flight_id"], data["origin"], data["dest"], data["tail_number"] or None,
                          scheduled, actual, delay, data["carrier"])
    _check_known(departure)
    return departure


def _parse_schedule(data: dict) -> Schedule:
    missing = [f for f in ("origin", "day", "scheduled_departures_utc") if f not in data]
    if missing:
        raise BadEvent(MALFORMED, f"schedule missing {', '.join(missing)}")
    origin, day, times = data["origin"], data["day"], data["scheduled_departures_utc"]
    if not isinstance(origin, str) or not origin:
        raise BadEvent(MALFORMED, f"origin must be a non-empty string, got {origin!r}")
    try:
        day = date.fromisoformat(day)
    except (TypeError, ValueError):
        raise BadEvent(MALFORMED, f"day must be a date (YYYY-MM-DD), got {day!r}") from None
    if not isinstance(times, list):
        raise BadEvent(MALFORMED, f"scheduled_departures_utc must be a list of ISO timestamps, got {times!r:.80}")
    moments = tuple(sorted(_timestamp({"scheduled_departures_utc": t}, "scheduled_departures_utc") for t in times))
    elsewhere = [iso_utc(m) for m in moments if local_day(m) != day]
    if elsewhere:
        raise BadEvent(MALFORMED, f"the schedule of {origin} for {day} holds {len(elsewhere)} departure(s) on "
                                  f"another local day, first {elsewhere[0]}")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadEvent(UNKNOWN_ENTITY, f"the schedule of {origin} is for {day}, outside the data "
                                       f"({FIRST_DAY} .. {LAST_DAY})")
    return Schedule(origin, day, moments)


def _check_known(departure: Departure) -> None:
    """The flight key names the flight: its carrier, its origin, and its scheduled local day and time."""
    local = departure.scheduled_departure_utc.astimezone(_LOCAL)
    parts = departure.flight_id.split("-")
    expected = f"{departure.origin}-{local:%Y%m%d}-{local:%H%M}"
    if len(parts) != 4 or "-".join(parts[1:]) != expected or not parts[0].startswith(departure.carrier):
        raise BadEvent(UNKNOWN_ENTITY, f"{departure.flight_id!r} is not a flight from {departure.origin} "
                                       f"scheduled at {local:%Y-%m-%d %H:%M} local by {departure.carrier} "
                                       f"(expected {departure.carrier}…-{expected})")
    if not FIRST_DAY <= local.date() <= LAST_DAY:
        raise BadEvent(UNKNOWN_ENTITY, f"{departure.flight_id!r} is scheduled outside the data "
                                       f"({FIRST_DAY} .. {LAST_DAY})")
