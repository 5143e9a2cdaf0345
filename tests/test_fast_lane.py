"""The fast lane (`make test-fast`): every stage once, on a week of real data, in about a minute.

Raw files land and load through the Dagster raw assets, dbt builds the warehouse, Feast serves the
features, PyTorch and scikit-learn train a small model that MLflow registers and the gate deploys,
and the API answers from it. The whole suite (`make test`) tests each stage in depth; this one says
quickly whether they still fit together.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from helpers import (
    failure_message,
    land_and_load,
    materialization_metadata,
    materialize_asset,
    materialize_dbt,
    materialize_model,
    materialize_raw,
    module_home,
    rows_by,
    warehouse_table,
)

pytestmark = pytest.mark.fast

FIRST_DAY, LAST_DAY = "2013-01-01", "2013-01-08"
# A few days for each split, a few epochs: the lane checks that the stages fit, not the model's worth.
TINY = {"holdout_days": 2, "validation_days": 2, "max_epochs": 2, "min_train_rows": 100,
        "gate_against_baselines": False, "min_first_auc": 0.5}


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with module_home(tmp_path_factory, "fast") as paths:
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            land_and_load(paths, LAST_DAY)
            # The last day again through the raw assets themselves, as the landing sensor runs them.
            raw = {table: materialize_raw(instance, paths, table, LAST_DAY) for table in ("flights", "weather")}
            assert materialize_dbt(instance, paths, reference=True).success
            assert materialize_dbt(instance, paths, first=FIRST_DAY, last=LAST_DAY).success
            for key in ("feature_definitions", "training_set"):
                assert materialize_asset(instance, paths, key).success, key
            assert materialize_asset(instance, paths, "online_features", partition=LAST_DAY).success
            models = materialize_model(instance, paths, ["trained_model", "model_evaluation", "deployed_model"], TINY)
            assert models.success, failure_message(models)
            yield {"paths": paths, "instance": instance, "raw": raw, "models": models}


def test_raw_days_load_through_their_assets_with_their_checks(lane) -> None:
    for table, result in lane["raw"].items():
        assert result.success, table
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), table
        assert materialization_metadata(result, f"raw_{table}")["dagster/row_count"] > 0


def test_dbt_builds_the_week_once_per_flight(lane) -> None:
    [(flights, days, distinct)] = warehouse_table(lane["paths"], (
        "select count(*), count(distinct flight_date), count(distinct flight_id) from fct_flights")).itertuples(index=False)
    assert days == 8 and flights == distinct > 5000


def test_a_model_is_trained_registered_gated_and_deployed(lane) -> None:
    model = materialization_metadata(lane["models"], "trained_model")
    evaluation = materialization_metadata(lane["models"], "model_evaluation")
    deployed = materialization_metadata(lane["models"], "deployed_model")
    assert model["model_version"] == 1 and set(rows_by(model["candidates"], "family")) >= {"network"}
    assert set(rows_by(evaluation["metrics"], "model")) >= {"challenger", "base_rate"}
    assert deployed["champion_version"] == 1 and deployed["action"] == "promote"


def test_the_api_answers_from_the_champion_with_online_features(lane) -> None:
    from fastapi.testclient import TestClient

    from mlplatform.serving.app import create_app

    flight = {"carrier": "UA", "flight_number": 1545, "origin": "EWR", "dest": "IAH",
              "scheduled_departure": "2013-01-08T17:15:00", "tail_number": "N14228"}
    with TestClient(create_app(lane["paths"], log_predictions=False)) as client:
        assert client.get("/health").json()["model_version"] == 1
        answer = client.post("/predict", json=flight)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert 0 < body["delay_probability"] < 1 and body["model_version"] == 1
        assert "carrier" not in body["defaults_used"]
        refused = client.post("/predict", json={**flight, "origin": ""})
        assert refused.status_code == 422
