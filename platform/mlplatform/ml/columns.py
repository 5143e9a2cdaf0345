"""Which training-set columns the model reads, and how: the model spec of the flight-delay domain."""

from __future__ import annotations

import pandas as pd

from mlplatform.features.service import LABEL

# Categorical inputs, embedded. `dest_code` is derived from the route.
CATEGORICAL = ("carrier_code", "origin_code", "dest_code", "route",
               "plane__plane_type", "plane__plane_engine_type", "plane__plane_manufacturer")
# Identifiers and timestamps: never inputs.
NOT_INPUTS = {"flight_id", "event_timestamp", "scheduled_departure_utc", "tail_number", LABEL}


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the model derives from the request (the destination, from the route)."""
    if "dest_code" not in frame and "route" in frame:
        frame = frame.assign(dest_code=frame["route"].astype("string").str.split("-", n=1).str[-1])
    return frame


def with_derived_record(record: dict) -> dict:
    """`with_derived` for one flight given as a dict (the serving path)."""
    route = record.get("route")
    if "dest_code" not in record and isinstance(route, str):
        return {**record, "dest_code": route.split("-", 1)[-1]}
    return record


def numeric_inputs(frame: pd.DataFrame) -> list[str]:
    """Every numeric feature column (Feast's `<view>__<feature>` names), in a stable order."""
    return sorted(c for c in frame.columns
                  if c not in NOT_INPUTS and c not in CATEGORICAL and "__" in c
                  and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))


# Inputs that describe the conditions of the moment rather than which flights fly: the weather, the
# trailing delay statistics of an airport, carrier or route, and the day's whole schedule at an
# airport. A day's or a week's values sit in a narrow band of a training set's spread, so their PSI
# is 1 to 8 every week of the replayed year (docs/drift_calibration.md): a change of conditions is
# what the model is there to predict through, and the champion's realized AUC (live_performance)
# watches it. Drift is measured on the rest: the mix of flights (routes, carriers, airports, planes,
# hours and how busy each route is).
CONDITIONS = ("origin_weather__", "origin_delay_stats__", "carrier_delay_stats__",
              "route_delay_stats__delay_rate", "route_delay_stats__mean_dep_delay",
              "origin_congestion__scheduled_departures_day")


def is_condition(column: str) -> bool:
    return column.startswith(CONDITIONS)
