"""Calendar features of a scheduled departure, computed from the request itself.

The same function runs in Feast's on-demand feature view (training sets and online lookups) and is
held equal to dbt's `feat_flight_calendar` by the tests, so training and serving cannot drift. The
holidays are dbt's seed, read once: one list for SQL and Python.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from mlplatform.state import project_root
from mlplatform.usecases import load

TIMEZONE = load("flights").calendar.timezone

HOLIDAYS_SEED = project_root() / "dbt_project" / "seeds" / "flights" / "us_federal_holidays.csv"
OUTPUTS = ("departure_hour", "day_of_week", "month", "days_to_nearest_holiday")


@cache
def holidays() -> np.ndarray:
    """Holiday dates as days since the epoch, sorted."""
    days = pd.to_datetime(pd.read_csv(HOLIDAYS_SEED)["holiday_date"])
    return np.sort(days.values.astype("datetime64[D]").astype(np.int64))


def calendar_features(scheduled_departure_utc: pd.Series) -> pd.DataFrame:
    """Local hour, ISO weekday (1 = Monday), month and days to the nearest holiday, per departure."""
    utc = pd.to_datetime(scheduled_departure_utc, utc=True)
    local = utc.dt.tz_convert(TIMEZONE)
    day = local.dt.tz_localize(None).dt.normalize().values.astype("datetime64[D]").astype(np.int64)
    known = holidays()
    position = np.clip(np.searchsorted(known, day), 1, len(known) - 1)
    nearest = np.minimum(np.abs(day - known[position - 1]), np.abs(known[position] - day))
    return pd.DataFrame({
        "departure_hour": local.dt.hour.astype("int64"),
        "day_of_week": local.dt.dayofweek.astype("int64") + 1,
        "month": local.dt.month.astype("int64"),
        "days_to_nearest_holiday": nearest.astype("int64"),
    }, index=scheduled_departure_utc.index)
