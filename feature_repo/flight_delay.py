"""Feast definitions of the flight-delay features: entities, sources, views and the service.

Every source is a Parquet export of a dbt feature table under $MLPLATFORM_HOME/warehouse/exports
(one folder per table, one file per day). Each view's TTL matches how long its values stay true.
"""

import os
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, RequestSource, ValueType
from feast.data_format import ParquetFormat
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String, UnixTimestamp

# The services' names and version are declared in the use case's spec
# (platform/mlplatform/defs/flights/defs.yaml: bump the version there when a service's features change).
from mlplatform.usecases import load

_FEATURES = load("flights").features
SERVICE_NAME, LIVE_SERVICE_NAME, SERVICE_VERSION = _FEATURES.service, _FEATURES.same_day_service, _FEATURES.service_version
REQUEST_TIMESTAMP = _FEATURES.request_time
from mlplatform.defs.flights import stream_state as same_day

EXPORTS = Path(os.environ.get("MLPLATFORM_HOME", Path(__file__).resolve().parents[1] / ".mlplatform")) \
    / "warehouse" / "exports"



def _source(table: str, by_day: bool = True) -> FileSource:
    files = EXPORTS / table / ("date=*/data.parquet" if by_day else "data.parquet")
    return FileSource(name=table, path=str(files), file_format=ParquetFormat(),
                      timestamp_field="event_timestamp", description=f"dbt model {table}, exported as Parquet")


# Entities: the join keys a flight carries.
origin = Entity(name="origin", join_keys=["origin_code"], value_type=ValueType.STRING,
                description="Departure airport (FAA code)")
route = Entity(name="route", join_keys=["route"], value_type=ValueType.STRING,
               description="Origin and destination, e.g. EWR-IAH")
carrier = Entity(name="carrier", join_keys=["carrier_code"], value_type=ValueType.STRING,
                 description="Two-letter carrier code")
plane = Entity(name="plane", join_keys=["tail_number"], value_type=ValueType.STRING,
               description="Plane tail number")

# Observations are hourly: three hours without one and the weather is unknown.
origin_weather = FeatureView(
    name="origin_weather", entities=[origin], ttl=timedelta(hours=3), source=_source("feat_origin_weather"),
    schema=[Field(name=n, dtype=Float64) for n in (
        "temperature_f", "dewpoint_f", "humidity_pct", "wind_speed_mph", "wind_gust_mph",
        "visibility_mi", "precipitation_in", "pressure_mb")],
    description="Latest weather observation at the origin airport.")

_STATS = [Field(name="flights_7d", dtype=Int64), Field(name="delay_rate_7d", dtype=Float64),
          Field(name="mean_dep_delay_7d", dtype=Float64), Field(name="flights_28d", dtype=Int64),
          Field(name="delay_rate_28d", dtype=Float64), Field(name="mean_dep_delay_28d", dtype=Float64)]


def _delay_stats(name: str, entity: Entity) -> FeatureView:
    # One row per day, valid for that day: a day without one means no flights in 28 days.
    return FeatureView(name=name, entities=[entity], ttl=timedelta(days=1), schema=_STATS,
                       source=_source(f"feat_{name}"),
                       description=f"Trailing 7 and 28 day delay statistics per {entity.name}, "
                                   "ending the day before.")


route_delay_stats = _delay_stats("route_delay_stats", route)
carrier_delay_stats = _delay_stats("carrier_delay_stats", carrier)
origin_delay_stats = _delay_stats("origin_delay_stats", origin)

# One row per scheduled hour: valid for that hour only.
origin_congestion = FeatureView(
    name="origin_congestion", entities=[origin], ttl=timedelta(hours=1),
    source=_source("feat_origin_congestion"),
    schema=[Field(name="scheduled_departures_hour", dtype=Int64),
            Field(name="scheduled_departures_day", dtype=Int64)],
    description="Scheduled departures at the origin in the departure's hour and day.")

# Reference data: valid until replaced (a TTL of 0 is no expiry).
plane_features = FeatureView(
    name="plane", entities=[plane], ttl=timedelta(0), source=_source("feat_plane", by_day=False),
    schema=[Field(name="plane_age_years", dtype=Int64), Field(name="plane_seats", dtype=Int64),
            Field(name="plane_engines", dtype=Int64), Field(name="plane_type", dtype=String),
            Field(name="plane_engine_type", dtype=String), Field(name="plane_manufacturer", dtype=String)],
    description="The plane: age in 2013, seats, engines, type. Unknown tail numbers get nulls.")

departure = RequestSource(name="departure", schema=[Field(name=REQUEST_TIMESTAMP, dtype=UnixTimestamp)],
                          description="The scheduled departure of the flight being scored.")


@on_demand_feature_view(
    sources=[departure],
    schema=[Field(name=n, dtype=Int64) for n in
            ("departure_hour", "day_of_week", "month", "days_to_nearest_holiday")],
    description="Calendar features of the scheduled departure, computed from the request by the "
                "same code in training and serving (mlplatform.defs.flights.calendar).",
)
def flight_calendar(inputs: pd.DataFrame) -> pd.DataFrame:
    # Feast runs this function detached from this module: it imports what it uses itself.
    from mlplatform.defs.flights.calendar import calendar_features

    return calendar_features(inputs["scheduled_departure_utc"])


flight_delay_service = FeatureService(
    name=SERVICE_NAME,
    features=[origin_weather, route_delay_stats, carrier_delay_stats, origin_delay_stats,
              origin_congestion, plane_features, flight_calendar],
    tags={"version": SERVICE_VERSION, "model": "flight_delay"},
    description="Every feature the flight delay model reads, as of the scheduled departure.",
)


# Same-day features: pushed online by the departure stream's consumer as flights leave; offline,
# the same values computed by dbt from the end-of-day file (the push sources' batch sources).
# A row holds until the entity's next departure. The origin's TTL bounds Feast's point-in-time join
# (without one, every flight joins every earlier departure of its airport: tens of billions of rows
# a year); 12 hours is longer than any night without a departure at New York's airports, so it never
# expires a value the online store would still serve. A plane has a few hundred departures a year:
# no expiry (TTL 0).
def _push_source(name: str, table: str) -> PushSource:
    return PushSource(name=name, batch_source=_source(table),
                      description=f"Departure events, through the consumer; offline: dbt model {table}")


_ENTITIES = {"origin": origin, "plane": plane}


def _same_day_view(grain: same_day.Grain, ttl: timedelta, description: str) -> FeatureView:
    return FeatureView(name=grain.view, entities=[_ENTITIES[grain.name]], ttl=ttl,
                       source=_push_source(grain.push_source, grain.model),
                       schema=[Field(name=n, dtype=Float64) for n in grain.features], description=description)


origin_departures = _same_day_view(same_day.ORIGIN, timedelta(hours=12),
                                   "How late the origin's latest departures left: mean delay of the last 10 and "
                                   "30, share of the last 10 more than 15 minutes late; and its backlog: flights "
                                   "of its day scheduled by then that have not left.")
plane_departures = _same_day_view(same_day.PLANE, timedelta(0), "How late the plane's latest departure from New York left.")

flight_delay_same_day_service = FeatureService(
    name=LIVE_SERVICE_NAME,
    features=[origin_departures, plane_departures],
    tags={"version": SERVICE_VERSION, "model": "flight_delay_live"},
    description="The same-day features, read as of `lead` minutes before the scheduled departure.",
)
