"""Online features for requests: read through Feast, held in memory until the store changes.

A Feast lookup costs milliseconds (registry, protobufs, a SQLite query per view), far over the
API's budget, while the values only change when a materialization writes the online store. So
each batch view's values are cached per entity key: a key is read through `get_online_features`
the first time it is asked for, and every cached value is dropped as soon as the online store
changes (its file's modification time, for the SQLite store) or, for stores without a file
(Redis, DynamoDB), after `max_age_seconds`. What a request names (its key, its entities, its moment
and the features computed from it) is the use case's to say: its hooks' `lookup(request)`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from collections.abc import Callable

from mlplatform.features.service import SERVICE_NAME
from mlplatform.serving.lookup import Lookup
from mlplatform.state import StatePaths
from mlplatform.usecases import active

# More distinct keys than a view can have (a few thousand entities per view) means requests are
# inventing keys: the cache starts over rather than grow without bound.
MAX_KEYS_PER_VIEW = 50_000


def lookup_of() -> Callable[[Any], Lookup]:
    """The use case's `lookup(request)` (its hooks)."""
    return active().module.lookup


def later_than(moments: dict[str, str | None], event_time: datetime) -> list[str]:
    """The views whose values are as of a moment after `event_time` (naive times are UTC)."""
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=timezone.utc)
    return [view for view, moment in moments.items() if moment is not None
            and datetime.fromisoformat(moment) > event_time]


def _key(view: "BatchView", entities: dict[str, str]) -> tuple:
    """The values of the view's join keys in a request (absent ones empty: an unknown entity)."""
    return tuple(entities.get(k, "") for k in view.join_keys)


@dataclass(frozen=True)
class BatchView:
    name: str
    join_keys: tuple[str, ...]  # one, or several for a view of several entities (a store and an item)
    references: list[str]  # "view:feature", as Feast takes them
    columns: list[str]  # "view__feature", as the model reads them


class OnlineFeatureReader:
    def __init__(self, paths: StatePaths, max_age_seconds: float = 60.0, check_seconds: float = 1.0):
        from mlplatform.features.repo import open_store

        self.store = open_store(paths)
        service = self.store.get_feature_service(SERVICE_NAME)
        # The entities a request names, by the join key that carries them: the `defaults_used` flags.
        self.entity_names = {e.join_key: e.name for e in self.store.list_entities()}
        self.lookup = lookup_of()
        on_demand = {v.name for v in self.store.list_on_demand_feature_views()}
        self.views: list[BatchView] = []
        for projection in service.feature_view_projections:
            if projection.name in on_demand:
                continue
            view = self.store.get_feature_view(projection.name)
            names = [f.name for f in projection.features]
            self.views.append(BatchView(projection.name, tuple(view.join_keys), [f"{projection.name}:{n}" for n in names],
                                        [f"{projection.name}__{n}" for n in names]))
        store_path = getattr(self.store.config.online_store, "path", None)
        self.store_file = Path(self.store.repo_path, store_path) if store_path else None
        self.max_age_seconds = max_age_seconds
        self.check_seconds = check_seconds
        # view -> entity key (its join keys' values) -> (its feature values, the UTC time of the online
        # row they came from)
        self._cache: dict[str, dict[tuple, tuple[dict[str, Any], str | None]]] = {v.name: {} for v in self.views}
        self._version: float | None = None
        self._checked = self._filled = 0.0

    def _store_version(self) -> float | None:
        try:
            return os.stat(self.store_file).st_mtime if self.store_file else None
        except OSError:
            return None

    def _drop_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_seconds:
            return
        self._checked = now
        version = self._store_version()
        if version != self._version or (self.store_file is None and now - self._filled > self.max_age_seconds):
            self._cache = {v.name: {} for v in self.views}
            self._version, self._filled = version, now

    def _fill(self, view: BatchView, cache: dict[tuple, tuple[dict[str, Any], str | None]], wanted: set[tuple]) -> None:
        if len(cache) + len(wanted) > MAX_KEYS_PER_VIEW:
            cache.clear()
        keys = wanted - cache.keys()
        if not keys:
            return
        response = self.store.get_online_features(features=view.references,
                                                  entity_rows=[dict(zip(view.join_keys, k)) for k in keys],
                                                  full_feature_names=True)
        found = response.to_dict()
        names = list(response.proto.metadata.feature_names.val)
        positions = [i for i, name in enumerate(names) if name in view.columns]
        for n, key in enumerate(zip(*(found[k] for k in view.join_keys))):
            newest = max((response.proto.results[i].event_timestamps[n].seconds for i in positions), default=0)
            cache[key] = ({column: found[column][n] for column in view.columns},
                          datetime.fromtimestamp(newest, timezone.utc).isoformat() if newest else None)

    def records(self, requests: list[Any]) -> tuple[list[dict[str, Any]], list[str], list[list[str]]]:
        """Per request: its training-set-shaped features, its key, and the entities the store does not know."""
        records, ids, unknown, _, _ = self.records_as_of(requests)
        return records, ids, unknown

    def records_as_of(self, requests: list[Any]) -> tuple[list[dict[str, Any]], list[str], list[list[str]],
                                                          list[dict[str, str | None]], list[list[str]]]:
        """`records`, and per request and view the UTC time of the online row its values came from, and
        the views whose row is later than the request's event time. The online store holds each
        entity's latest row: asked about an event earlier than it (a row of a day already landed),
        the answer reads values from after the event, which training never does. It is still answered,
        and says so (`features_after_event`), and the realized online metrics leave it out."""
        self._drop_if_stale()
        cache = self._cache  # one generation for the whole request, even if another thread drops it
        found = [self.lookup(request) for request in requests]
        for view in self.views:
            self._fill(view, cache[view.name], {_key(view, f.entities) for f in found})
        records, ids, unknown, as_of, after_event = [], [], [], [], []
        for lookup in found:
            key = lookup.entities
            record: dict[str, Any] = dict(key)
            known: dict[str, bool] = {}
            moments: dict[str, str | None] = {}
            for view in self.views:
                values, moments[view.name] = cache[view.name][_key(view, key)]
                record.update(values)
                seen = any(v is not None for v in values.values())
                for join_key in view.join_keys:
                    known[join_key] = known.get(join_key, False) or seen
            record.update(lookup.request_features)
            records.append(record)
            ids.append(lookup.key)
            unknown.append([self.entity_names.get(k, k) for k, seen in known.items() if not seen])
            as_of.append(moments)
            after_event.append(later_than(moments, lookup.event_time))
        return records, ids, unknown, as_of, after_event
