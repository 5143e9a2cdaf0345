"""Online features for requested flights, read through one Feast store built at start-up."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from mlplatform.domain import TIMEZONE
from mlplatform.features.service import REQUEST_TIMESTAMP, SERVICE_NAME
from mlplatform.serving.schemas import Flight
from mlplatform.state import StatePaths

LOCAL = ZoneInfo(TIMEZONE)
# Which entity a group of features describes: all null means the store does not know it.
ENTITY_VIEWS = {"origin": "origin_weather__", "route": "route_delay_stats__",
                "carrier": "carrier_delay_stats__", "plane": "plane__"}


def flight_id(flight: Flight, departure_local) -> str:
    return f"{flight.carrier}{flight.flight_number}-{flight.origin}-{departure_local:%Y%m%d-%H%M}"


class OnlineFeatureReader:
    def __init__(self, paths: StatePaths):
        from mlplatform.features.repo import open_store

        self.store = open_store(paths)
        self.service = self.store.get_feature_service(SERVICE_NAME)

    def rows(self, flights: list[Flight]) -> tuple[pd.DataFrame, list[str]]:
        """Training-set-shaped rows for the flights, and their ids."""
        entity_rows, ids = [], []
        for f in flights:
            departure = f.scheduled_departure
            local = departure.replace(tzinfo=LOCAL) if departure.tzinfo is None else departure.astimezone(LOCAL)
            entity_rows.append({"origin_code": f.origin, "route": f"{f.origin}-{f.dest}", "carrier_code": f.carrier,
                                "tail_number": f.tail_number or "", REQUEST_TIMESTAMP: pd.Timestamp(local).tz_convert("UTC")})
            ids.append(flight_id(f, local))
        found = self.store.get_online_features(features=self.service, entity_rows=entity_rows,
                                               full_feature_names=True).to_df()
        return found, ids


def unknown_entities(row: pd.Series) -> list[str]:
    unknown = []
    for entity, prefix in ENTITY_VIEWS.items():
        values = row[[c for c in row.index if c.startswith(prefix)]]
        if len(values) and values.isna().all():
            unknown.append(entity)
    return unknown
