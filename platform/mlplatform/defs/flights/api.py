"""The flights use case's API: what a caller sends to `/predict` (a `Flight`), and how it becomes a
lookup of the feature service (its key, its entities, its departure, its calendar features)."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from mlplatform.serving.lookup import Lookup
from mlplatform.usecases import load

_FLIGHTS = load("flights")
LOCAL = ZoneInfo(_FLIGHTS.calendar.timezone)
CALENDAR_VIEW = _FLIGHTS.features.request_view
EARLIEST, LATEST = datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59)


class Flight(BaseModel):
    carrier: str = Field(min_length=2, max_length=3, description="Carrier code, e.g. UA",
                         examples=["UA"])
    flight_number: int = Field(ge=1, le=9999, examples=[1545])
    origin: str = Field(min_length=3, max_length=4, description="Origin airport (FAA code)", examples=["EWR"])
    dest: str = Field(min_length=3, max_length=4, description="Destination airport (FAA code)", examples=["IAH"])
    scheduled_departure: datetime = Field(
        description="Scheduled departure: ISO 8601; without an offset it is New York local time",
        examples=["2013-12-30T17:15:00"])
    tail_number: str | None = Field(default=None, max_length=10, examples=["N14228"])

    @field_validator("carrier", "origin", "dest", "tail_number")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.strip().upper() if value is not None else None

    @field_validator("scheduled_departure")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        # Far outside any schedule, and beyond what the feature code's timestamps hold (1678-2261).
        if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return value


def flight_id(flight: Flight, departure_local: datetime) -> str:
    return f"{flight.carrier}{flight.flight_number}-{flight.origin}-{departure_local:%Y%m%d-%H%M}"


def entity_values(flight: Flight) -> dict[str, str]:
    return {"origin_code": flight.origin, "route": f"{flight.origin}-{flight.dest}",
            "carrier_code": flight.carrier, "tail_number": flight.tail_number or ""}


def departure_utc(flight: Flight) -> datetime:
    departure = flight.scheduled_departure
    local = departure.replace(tzinfo=LOCAL) if departure.tzinfo is None else departure
    return local.astimezone(timezone.utc)


@lru_cache(maxsize=100_000)
def calendar_for_hour(utc_hour: int) -> dict[str, int]:
    """The calendar features of any departure in this UTC hour (New York's offsets are whole hours,
    so the local hour and date follow from it)."""
    import pandas as pd  # here: the code location loads this module, and pandas costs its load

    from mlplatform.defs.flights.calendar import calendar_features

    frame = calendar_features(pd.Series([pd.Timestamp(utc_hour * 3600, unit="s", tz="UTC")]))
    return {f"{CALENDAR_VIEW}__{name}": int(value) for name, value in frame.iloc[0].items()}


def lookup(flight: Flight) -> Lookup:
    departure = departure_utc(flight)
    return Lookup(key=flight_id(flight, departure.astimezone(LOCAL)), entities=entity_values(flight),
                  event_time=departure, request_features=calendar_for_hour(int(departure.timestamp()) // 3600))
