"""The machinery knows no use case: no module outside `platform/mlplatform/defs/` names what a use case
declares (its tables, columns, entities, feature views and services, dbt models, registered models).

The names come from each enabled use case's spec, its dbt models' folder and its Feast definitions
(tests/vocabulary.py). `STILL_NAMED` is the debt left from when the platform was a flights
application, a ratchet: a file may lose a name from its list (then delete it here), never gain one,
and no other file may name any. `python tests/vocabulary.py` prints the current state.
"""

from __future__ import annotations

import pytest

from mlplatform.usecases import enabled, load
from vocabulary import declared_names, leaks

pytestmark = pytest.mark.fast

STILL_NAMED: dict[str, set[str]] = {
    "assets/deployed.py": {'flights'},
    "assets/features.py": {'departure', 'flights'},
    "assets/model.py": {'carrier', 'departure', 'flight_delay', 'flights', 'origin', 'plane', 'route'},
    "assets/monitoring.py": {'airports', 'departure', 'flights', 'planes', 'route', 'weather'},
    "assets/stream.py": {'departure', 'flights'},
    "assets/transformed.py": {'plane'},
    "automation/freshness.py": {'flights'},
    "automation/retrain.py": {'flights'},
    "cli.py": {'departure', 'flights', 'origin', 'planes'},
    "features/calendar.py": {'departure', 'feat_flight_calendar', 'scheduled_departure_utc'},
    "features/online.py": {'weather'},
    "features/training.py": {'departure', 'flights'},
    "ingest/contract.py": {'flights'},
    "ingest/lake.py": {'flights', 'weather'},
    "ingest/replay.py": {'departure', 'flights', 'origin'},
    "ml/boosting.py": {'flights', 'weather'},
    "ml/bundle.py": {'flights'},
    "ml/drift.py": {'flights'},
    "ml/preprocess.py": {'flights'},
    "ml/split.py": {'flights'},
    "ml/train.py": {'weather'},
    "model/deployment.py": {'flights'},
    "model/pyfunc.py": {'flight_delay'},
    "model/shadow.py": {'flight_delay_live', 'flights'},
    "model/tracking.py": {'flight_delay'},
    "resources.py": {'departure', 'flight_delay_live', 'flights', 'planes', 'weather'},
    "serving/app.py": {'departure', 'flight_delay_live', 'flight_id', 'flights'},
    "serving/champion.py": {'flights'},
    "serving/features.py": {'carrier', 'carrier_code', 'departure', 'flight_id', 'flights', 'origin', 'origin_code', 'plane', 'planes', 'route', 'tail_number'},
    "serving/guard.py": {'flights'},
    "serving/prediction_log.py": {'flight_id'},
    "serving/same_day.py": {'departure', 'flights'},
    "serving/schemas.py": {'carrier', 'departure', 'flight_delay_live', 'flight_id', 'flights', 'origin', 'plane', 'route', 'tail_number'},
    "state.py": {'departure'},
    "status.py": {'departure', 'flights'},
    "streaming/__init__.py": {'departure'},
    "streaming/consumer.py": {'departure'},
    "streaming/events.py": {'carrier', 'departure', 'flight_id', 'flights', 'origin', 'scheduled_departure_utc', 'tail_number'},
    "streaming/features.py": {'airports', 'carrier', 'departure', 'flight_id', 'flights', 'origin', 'origin_code', 'plane', 'scheduled_departure_utc', 'tail_number'},
    "streaming/skew.py": {'departure'},
    "streaming/topic.py": {'departure'},
    "warehouse/exports.py": {'flights'},
}


def test_the_machinery_names_no_more_of_a_use_case_than_it_did():
    names = set().union(*(declared_names(use_case) for use_case in enabled()))
    found = leaks(names)
    new = {f: sorted(set(hits) - STILL_NAMED.get(f, set())) for f, hits in found.items()}
    new = {f: hits for f, hits in new.items() if hits}
    assert not new, f"machinery files name a use case's things (read them from its spec instead): {new}"
    paid = {f: sorted(known - set(found.get(f, []))) for f, known in STILL_NAMED.items()}
    paid = {f: gone for f, gone in paid.items() if gone}
    assert not paid, f"these names are gone from the machinery: remove them from STILL_NAMED: {paid}"


def test_the_flights_use_case_declares_its_prediction_contract():
    flights = load("flights")
    names = declared_names(flights)
    # What the vocabulary check looks for must include the use case's own contract, or it proves nothing.
    assert {"fct_flights", "flight_id", "is_delayed", "flight_delay", "flight_delay_v1", "origin_code"} <= names
