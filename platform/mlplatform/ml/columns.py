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
