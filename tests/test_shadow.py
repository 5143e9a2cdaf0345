"""A challenger in shadow: gated, it scores the daily batches and the API's requests beside the
champion, logged but never returned, and is promoted or retired on its realized figures."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from helpers import (
    failure_message,
    materialization_metadata,
    materialize_asset,
    materialize_model,
)
from mlplatform.model import shadow
from shared_state import FLIGHTS_THROUGH as LAST_DAY, flights_copy
from mlplatform.model.shadow import ShadowResults, verdict

SCORED = ["2013-02-03", LAST_DAY]
SPEC = {"holdout_days": 4, "validation_days": 4, "max_epochs": 3, "min_train_rows": 100,
        "gate_against_baselines": False, "min_first_auc": 0.5, "shadow_days": 2}
MODEL = ["trained_model", "model_evaluation", "deployed_model"]


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Champion v1; then v2, gated, goes into shadow; then two days scored by both."""
    with flights_copy(tmp_path_factory, "shadow") as paths:
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            assert materialize_asset(instance, paths, "online_features", partition=LAST_DAY).success
            first = materialize_model(instance, paths, MODEL, SPEC)
            assert first.success, failure_message(first)
            # The next challenger: a family of its own, and a gate that lets it through whatever its figures.
            second = materialize_model(instance, paths, MODEL, {**SPEC, "model_family": "gradient_boosting",
                                                               "gate_tolerance": 1.0})
            assert second.success, failure_message(second)
            batches = [materialize_asset(instance, paths, "batch_predictions", partition=day) for day in SCORED]
            yield {"paths": paths, "instance": instance, "first": first, "second": second, "batches": batches}


def test_the_first_champion_never_waits_and_the_next_challenger_goes_into_shadow(shadowed) -> None:
    from mlplatform.model.deployment import history
    from mlplatform.model.tracking import CHAMPION, version_for_alias

    paths = shadowed["paths"]
    assert materialization_metadata(shadowed["first"], "deployed_model")["action"] == "promote"
    second = materialization_metadata(shadowed["second"], "deployed_model")
    assert (second["action"], second["champion_version"], second["shadow_version"]) == ("shadow", 1, 2)
    assert int(version_for_alias(paths, CHAMPION).version) == 1
    assert int(shadow.current(paths).version) == 2
    # The deployment log stays the sequence of champions: the entry names the shadow beside it.
    assert {k: history(paths)[-1][k] for k in ("action", "version", "shadow_version")} == \
        {"action": "shadow", "version": 1, "shadow_version": 2}


def test_the_daily_batches_are_scored_by_both_and_kept_apart(shadowed) -> None:
    import pyarrow.parquet as pq

    from mlplatform.resources import PlatformState

    exports = PlatformState(home=str(shadowed["paths"].home)).exports
    for day, batch in zip(SCORED, shadowed["batches"]):
        assert batch.success and materialization_metadata(batch, "batch_predictions")["shadow_version"] == 2
        champion = pq.read_table(exports.path("predictions", day)).to_pandas()
        shadowing = pq.read_table(exports.path(shadow.SHADOW_PREDICTIONS, day)).to_pandas()
        assert set(champion["model_version"]) == {1} and set(shadowing["model_version"]) == {2}
        assert sorted(champion["flight_id"]) == sorted(shadowing["flight_id"])
        assert not champion["delay_probability"].equals(shadowing["delay_probability"])


def test_the_api_answers_with_the_champion_and_logs_the_shadow_beside_it(shadowed, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from mlplatform.serving.app import create_app
    from mlplatform.serving.prediction_log import FOLDER, read_log

    paths = shadowed["paths"]
    flight = {"carrier": "UA", "flight_number": 1545, "origin": "EWR", "dest": "IAH",
              "scheduled_departure": f"{LAST_DAY}T17:15:00", "tail_number": "N14228"}
    monkeypatch.setenv("MLPLATFORM_MODEL_SHADOW_DAYS", "2")  # the API watches the shadow where shadow runs are on
    with TestClient(create_app(paths)) as client:
        health = client.get("/health").json()
        assert (health["model_version"], health["shadow_model_version"]) == (1, 2)
        answer = client.post("/predict", json=flight).json()
        assert answer["model_version"] == 1
    logged = read_log(paths.home / FOLDER)
    rows = logged[logged["request_id"] == answer["request_id"]].set_index("endpoint")
    assert sorted(rows.index) == ["/predict", "/predict (shadow)"]
    assert rows.loc["/predict", "model_version"] == 1 and rows.loc["/predict (shadow)", "model_version"] == 2
    assert rows.loc["/predict", "delay_probability"] == pytest.approx(answer["delay_probability"])
    assert rows.loc["/predict (shadow)", "features"] == rows.loc["/predict", "features"]


def test_once_its_days_are_in_the_shadow_is_promoted_or_retired_on_its_figures(shadowed) -> None:
    from mlplatform.automation.retrain import shadow_decision_request
    from mlplatform.model.tracking import CHAMPION, version_for_alias
    from mlplatform.resources import ModelSpec, PlatformState

    paths, instance = shadowed["paths"], shadowed["instance"]
    state = PlatformState(home=str(paths.home))
    assert shadow_decision_request(state, ModelSpec(shadow_days=3)) is None  # one day short
    request = shadow_decision_request(state, ModelSpec(**SPEC))
    assert request is not None and request.job_name == "shadow_decision"

    found = shadow.results(state.exports, 2)
    assert found.days == SCORED and found.rows > 1000
    decided = materialize_model(instance, paths, ["deployed_model"], SPEC)
    assert decided.success, failure_message(decided)
    promoted = found.metric == "roc_auc" and found.shadow_metric >= found.champion_metric - 0.005
    assert int(version_for_alias(paths, CHAMPION).version) == (2 if promoted else 1)
    assert shadow.current(paths) is None  # the shadow run is over either way
    assert shadow_decision_request(state, ModelSpec(**SPEC)) is None
    if not promoted:  # a rerun starts no second shadow run of the retired version
        again = materialize_model(instance, paths, ["deployed_model"], SPEC)
        assert materialization_metadata(again, "deployed_model")["action"] == "shadow_retired"
        assert shadow.current(paths) is None


def test_the_verdict_waits_for_its_days_then_compares_on_the_same_flights() -> None:
    def found(days: int, shadow_auc: float | None, champion_auc: float | None) -> ShadowResults:
        return ShadowResults(2, [f"2013-01-{d:02d}" for d in range(1, days + 1)], 900 * days, shadow_auc, champion_auc)

    assert verdict(found(1, 0.7, 0.6), 2, 0.005) == ("wait", "in shadow: 1 of 2 scored day(s)")
    assert verdict(found(2, None, None), 2, 0.005)[0] == "wait"  # scored but one class only
    outcome, why = verdict(found(2, 0.698, 0.70), 2, 0.005)
    assert outcome == "promote" and "ROC AUC 0.6980 against the champion's 0.7000" in why
    assert verdict(found(3, 0.69, 0.70), 2, 0.005)[0] == "retire"
    # A regression's error: lower is better, the tolerance in its units.
    rmse = ShadowResults(2, ["1998-01-01", "1998-01-02"], 500, 101.0, 100.0, "rmse")
    assert verdict(rmse, 2, 1.0)[0] == "promote" and verdict(rmse, 2, 0.5)[0] == "retire"
    assert "RMSE 101.0000 against the champion's 100.0000" in verdict(rmse, 2, 1.0)[1]
    assert verdict(ShadowResults(2, ["1998-01-01", "1998-01-02"], 500, 90.0, 100.0, "rmse"), 2, 0.0)[0] == "promote"
