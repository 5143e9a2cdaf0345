"""The machinery knows no use case: no module outside `platform/mlplatform/defs/` names what a use case
declares (its tables, columns, entities, feature views and services, dbt models, registered models),
not even in a comment.

The names come from each use case's spec (every folder of `defs/`), its dbt models' folder and its
Feast definitions (tests/vocabulary.py); `python tests/vocabulary.py NAME...` prints where they leak.
"""

from __future__ import annotations

import pytest

from mlplatform.usecases import DEFS_DIR, SPEC_FILE, load
from vocabulary import declared_names, leaks

pytestmark = pytest.mark.fast


def test_the_machinery_names_nothing_a_use_case_declares():
    # Every use case of the checkout, enabled or not: the machinery must serve any of them.
    names = set().union(*(declared_names(load(p.parent.name)) for p in DEFS_DIR.glob(f"*/{SPEC_FILE}")))
    found = leaks(names)
    assert not found, f"machinery files name a use case's things (read them from its spec instead): {found}"


def test_the_flights_use_case_declares_its_prediction_contract():
    flights = load("flights")
    names = declared_names(flights)
    # What the vocabulary check looks for must include the use case's own contract, or it proves nothing.
    assert {"fct_flights", "flight_id", "is_delayed", "flight_delay", "flight_delay_v1", "origin_code"} <= names


def test_customer_spend_declares_its_own_names():
    names = declared_names(load("customer_spend"))
    assert {"fct_customer_purchases", "customer_day_id", "spend_next_90d", "customer_spend_v1", "customer_id",
            "customer_history", "feat_customer_history", "purchases"} <= names
