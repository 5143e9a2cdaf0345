"""Same-day features for `/predict/live`: read from Feast's online store at request time.

Unlike the day-ahead views (cached in `features.py` until a materialization changes the store), the
same-day stream's consumer rewrites these rows as events come, so every request reads them afresh
(one Feast lookup per view for the whole request). Each answer says, per view, the event time of
the row that answered: the event the value reflects.

Feast's online read returns an entity's last row however old it is; its point-in-time join in
training drops a row older than the view's TTL before the moment it joins at (`lead` minutes before
the request time). The reader drops the same rows, so a value the model never saw in training is not
served either.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mlplatform.features.service import LIVE_SERVICE_NAME
from mlplatform.serving.features import lookup_of


class SameDayReader:
    def __init__(self, store, lead_minutes: int):
        self.store = store
        self.lead = timedelta(minutes=lead_minutes)
        service = store.get_feature_service(LIVE_SERVICE_NAME)
        self.views = []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            (join_key,) = view.join_keys
            names = [f.name for f in projection.features]
            self.views.append((projection.name, join_key, [f"{projection.name}:{n}" for n in names],
                               view.ttl if view.ttl else None))
        self.lookup = lookup_of()

    def read(self, requests: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, str | None]]]:
        """Per request: the same-day feature columns (`view__feature`), and per view the UTC time of the
        event its row reflects (None where the entity has none)."""
        found = [self.lookup(request) for request in requests]
        keys = [f.entities for f in found]
        values: list[dict[str, Any]] = [{} for _ in requests]
        as_of: list[dict[str, str | None]] = [{} for _ in requests]
        for view, join_key, references, ttl in self.views:
            wanted = sorted({k[join_key] for k in keys if k.get(join_key)})
            rows: dict[str, tuple[dict[str, Any], str | None]] = {}
            if wanted:
                response = self.store.get_online_features(features=references,
                                                          entity_rows=[{join_key: k} for k in wanted],
                                                          full_feature_names=True)
                columns = response.to_dict()
                names = list(response.proto.metadata.feature_names.val)
                feature_positions = [i for i, n in enumerate(names) if "__" in n]
                for row, key in enumerate(columns[join_key]):
                    moments = [response.proto.results[i].event_timestamps[row].seconds for i in feature_positions]
                    newest = max(moments, default=0)
                    rows[key] = ({names[i]: columns[names[i]][row] for i in feature_positions},
                                  datetime.fromtimestamp(newest, timezone.utc).isoformat() if newest else None)
            for n, key in enumerate(keys):
                row_values, moment = rows.get(key.get(join_key, ""), ({}, None))
                if moment and ttl and datetime.fromisoformat(moment) < found[n].event_time - self.lead - ttl:
                    row_values, moment = {}, None  # expired, as in training
                values[n].update(row_values)
                as_of[n][view] = moment
        return values, as_of
