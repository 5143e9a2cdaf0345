"""Partitions of the platform's daily assets.

Daily partitions over the data's calendar rather than dynamic partitions: time windows give dbt its
incremental ranges and the rolling features their lookback through partition mappings, backfills
select day ranges, and a day that has not landed yet simply shows as missing. A live feed would use
the same definition with no end date.
"""

from datetime import date, timedelta

import dagster as dg

from mlplatform.usecases import active

_CALENDAR = active().calendar
FIRST_DAY, LAST_DAY, TIMEZONE = _CALENDAR.first_day, _CALENDAR.last_day, _CALENDAR.timezone

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(),
    end_date=LAST_DAY.fromordinal(LAST_DAY.toordinal() + 1).isoformat(),
    timezone=TIMEZONE,
)


def next_day(day: str) -> str:
    """The partition key after `day` (keys are `YYYY-MM-DD`)."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def days_between(first: str, last: str) -> list[str]:
    """The partition keys from `first` through `last`."""
    start = date.fromisoformat(first)
    return [(start + timedelta(days=i)).isoformat() for i in range((date.fromisoformat(last) - start).days + 1)]


def days_apart(first: str, last: str) -> int:
    return (date.fromisoformat(last) - date.fromisoformat(first)).days
