"""The machinery knows no use case: no module outside `platform/mlplatform/defs/` names what a use case
declares (its tables, columns, entities, feature views and services, dbt models, registered models).

The names come from each use case's spec (every folder of `defs/`), its dbt models' folder and its Feast definitions
(tests/vocabulary.py). `STILL_NAMED` is the debt left from when the platform was a flights
application, a ratchet: a file may lose a name from its list (then delete it here), never gain one,
and no other file may name any. `python tests/vocabulary.py` prints the current state.
"""

from __future__ import annotations

import pytest

from mlplatform.usecases import DEFS_DIR, SPEC_FILE, load
from vocabulary import declared_names, leaks

pytestmark = pytest.mark.fast

STILL_NAMED: dict[str, set[str]] = {
    "assets/deployed.py": {'flights'},
    "assets/features.py": {'departure', 'flights'},
    "assets/model.py": {'carrier', 'departure', 'flight_delay', 'origin', 'plane', 'route'},
    "assets/monitoring.py": {'airports', 'departure', 'flights', 'planes', 'route', 'weather'},
    "assets/stream.py": {'departure', 'flights'},
    "assets/transformed.py": {'plane'},
    "automation/freshness.py": {'flights'},
    "automation/retrain.py": {'flights'},
    "cli.py": {'departure', 'flights', 'origin', 'planes'},
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
    "serving/app.py": {'departure'},
    "serving/champion.py": {'flights'},
    "serving/same_day.py": {'departure', 'flights'},
    "state.py": {'departure'},
    "status.py": {'departure'},
    "streaming/__init__.py": {'departure'},
    "streaming/consumer.py": {'departure'},
    "streaming/events.py": {'carrier', 'departure', 'flight_id', 'flights', 'origin', 'scheduled_departure_utc', 'tail_number'},
    "streaming/features.py": {'airports', 'carrier', 'departure', 'flight_id', 'flights', 'origin', 'origin_code', 'plane', 'scheduled_departure_utc', 'tail_number'},
    "streaming/skew.py": {'departure'},
    "streaming/topic.py": {'departure'},
    "warehouse/exports.py": {'flights'},
}


def test_the_machinery_names_no_more_of_a_use_case_than_it_did():
    # Every use case of the checkout, enabled or not: the machinery must serve any of them.
    names = set().union(*(declared_names(load(p.parent.name)) for p in DEFS_DIR.glob(f"*/{SPEC_FILE}")))
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


def test_customer_spend_declares_its_own_names():
    names = declared_names(load("customer_spend"))
    assert {"fct_customer_purchases", "customer_day_id", "spend_next_90d", "customer_spend_v1", "customer_id",
            "customer_history", "feat_customer_history", "purchases"} <= names
