"""The model's feature contract with Feast: the service, the entity columns, the label.

Kept free of Feast imports, so the code location loads fast; `feature_repo/flight_delay.py` reads
the service's name and version from here.
"""

SERVICE_VERSION = "v1"
SERVICE_NAME = f"flight_delay_{SERVICE_VERSION}"
# The same-day features the departure stream keeps online (mlplatform.streaming), read as of
# `lead` minutes before the scheduled departure; the live model reads both services.
LIVE_SERVICE_NAME = f"flight_delay_same_day_{SERVICE_VERSION}"

# What a flight brings to a feature lookup: its join keys and its scheduled departure, which is
# both the point-in-time of the lookup and the request input of the calendar features.
EVENT_TIMESTAMP = "event_timestamp"
REQUEST_TIMESTAMP = "scheduled_departure_utc"
JOIN_KEYS = ("origin_code", "route", "carrier_code", "tail_number")
FLIGHT_KEY = "flight_id"
LABEL = "is_delayed"
# The on-demand view of request-time calendar features (computed, never materialized).
CALENDAR_VIEW = "flight_calendar"
