"""The second use case, customer spend, through the same machinery: the CDNOW purchases replayed
day by day, loaded, built by its own dbt models, its features through Feast, a regression trained,
gated on RMSE and deployed, its batch predictions and live performance, and a retrain decision that
counts only outcomes known 90 days on. Enabled alone (MLPLATFORM_USE_CASES=customer_spend), in its
own processes, on a slice of 196 days (1997-01-01 .. 1997-07-15)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fault_helpers import mlplatform, stop_group
from mlplatform.ingest.lake import Lake
from mlplatform.state import StatePaths

USE_CASE = {"MLPLATFORM_USE_CASES": "customer_spend"}
PREDICTIONS = "customer_spend_predictions"  # the warehouse's table of its batch predictions, in its namespace


@pytest.mark.fast
def test_its_feed_lands_days_its_contract_loads_and_rejects(tmp_path):
    """The fast lane's slice: a few days cut from the package's file, checked against their contract
    and written to the lake; a broken day is quarantined with its reason."""
    from datetime import date

    from mlplatform.ingest.landing import LandingZone
    from mlplatform.ingest.load import LandingFileRejected, load_landing_file
    from mlplatform.usecases import load

    spend = load("customer_spend")
    contract = spend.module.CONTRACTS["purchases"]
    zone, lake = LandingZone(tmp_path / "landing", tmp_path / "quarantine"), Lake(tmp_path / "lake")
    for day in ("1997-01-01", "1997-01-02"):
        data = spend.module.daily_file("purchases", date.fromisoformat(day))
        assert data == spend.module.daily_file("purchases", date.fromisoformat(day))  # the same bytes each time
        zone.deliver("purchases", day, data)
        loaded = load_landing_file(contract, zone, lake, day=day)
        assert loaded.validated.rows.num_rows == data.count(b"\n") - 1 > 100
    stored = lake.read("purchases", "1997-01-02").to_pandas()
    assert stored.duplicated(["customer_id", "purchase_date", "purchase_number"]).sum() == 0
    bad = spend.module.daily_file("purchases", date(1997, 1, 3)).replace(b",1997-01-03,", b",1997-01-04,", 1)
    zone.deliver("purchases", "1997-01-03", bad)
    with pytest.raises(LandingFileRejected, match="another day than the file's day 1997-01-03"):
        load_landing_file(contract, zone, lake, day="1997-01-03")
    assert not lake.path("purchases", "1997-01-03").exists()


@pytest.fixture(scope="module")
def spend(tmp_path_factory):  # noqa: D401 (the module's shared state: built once)
    home = tmp_path_factory.mktemp("customer_spend") / "home"
    landed = mlplatform(home, "replay", "--through", "1997-07-10", **USE_CASE)
    assert landed.returncode == 0, landed.stderr
    first = mlplatform(home, "pipeline", **USE_CASE)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    more = mlplatform(home, "replay", "--days", "5", **USE_CASE)
    assert more.returncode == 0, more.stderr
    second = mlplatform(home, "pipeline", "--no-retrain", **USE_CASE)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    return {"paths": StatePaths.resolve(home), "first": first.stdout, "second": second.stdout}


@pytest.mark.slow
def test_its_data_flows_through_its_own_dbt_models_with_labels_only_once_known(spend):
    exports = Lake(spend["paths"].exports)
    days = exports.days("fct_customer_purchases")
    assert days[0] == "1997-01-01" and days[-1] == "1997-07-15"
    facts = pd.concat([pq.read_table(exports.path("fct_customer_purchases", d)).to_pandas() for d in days])
    facts["purchase_date"] = pd.to_datetime(facts["purchase_date"])
    assert facts["customer_day_id"].is_unique
    known = facts[facts["purchase_date"] <= pd.Timestamp("1997-04-16")]
    unknown = facts[facts["purchase_date"] > pd.Timestamp("1997-04-16")]
    # 90 days after the newest landed day are needed for an outcome; before, it is null.
    assert known["spend_next_90d"].notna().all() and unknown["spend_next_90d"].isna().all()
    assert (known["spend_next_90d"] >= 0).all() and known["spend_next_90d"].gt(0).any()
    history = pq.read_table(exports.path("feat_customer_history", "1997-03-03")).to_pandas()
    assert {"spend_last_30d", "spend_to_date", "days_since_previous", "tenure_days"} <= set(history.columns)
    assert (history["spend_last_30d"] <= history["spend_to_date"] + 1e-9).all()


@pytest.mark.slow
def test_a_regression_is_trained_gated_on_rmse_and_deployed(spend):
    from mlplatform.features.training import latest_manifest

    assert "retrain: no champion yet" in spend["first"] and "champion: version 1" in spend["first"]
    # Its own folder of the state directory, in its namespace (`mlplatform.usecases.named`).
    manifest = latest_manifest(spend["paths"].home / "customer_spend" / "training_sets")
    # The training set reads only days whose outcomes were known (90 days before the newest day).
    assert manifest["window"]["last_day"] == "1997-04-11"
    status = json.loads(mlplatform(spend["paths"].home, "status", "--json", **USE_CASE).stdout)
    champion = status["models"]["aliases"]["champion"]
    assert champion["version"] == 1 and champion["gate"] == "passed" and champion["holdout_rmse"] > 0
    assert status["live_model"] == {} and status["lake"]["purchases"]["count"] == 196
    predictions = Lake(spend["paths"].exports)
    newest = predictions.days(PREDICTIONS)[-1]
    scored = pq.read_table(predictions.path(PREDICTIONS, newest)).to_pandas()
    assert newest == "1997-07-15" and scored["predicted_spend_90d"].notna().all() and len(scored) > 10


@pytest.mark.slow
def test_the_retrain_decision_counts_only_matured_outcomes(spend):
    exports = Lake(spend["paths"].exports)
    matured_since = [d for d in exports.days("fct_customer_purchases") if "1997-04-11" < d <= "1997-04-16"]
    rows = sum(pq.read_metadata(exports.path("fct_customer_purchases", d)).num_rows for d in matured_since)
    assert len(matured_since) == 5
    assert f"{rows:,} rows labeled since the champion's last training day 1997-04-11" in spend["second"], spend["second"]


@pytest.mark.slow
def test_its_route_answers_from_online_features_as_its_batch_did(spend):
    """`mlplatform serve` takes the use case's own request (a customer and a purchase day) and answers
    with its prediction key and output; with the day's features online it is the batch's prediction."""
    import time

    import httpx

    from fault_helpers import start
    from servers import free_port

    exports = Lake(spend["paths"].exports)
    scored = pq.read_table(exports.path(PREDICTIONS, "1997-07-15")).to_pandas().iloc[0]
    customer = scored["customer_id"]
    port = free_port()
    server = start(spend["paths"].home, "serve", "--port", str(port), "--quiet", **USE_CASE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("model_version") == 1:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.log.read_text()[-3000:]
            time.sleep(0.5)
        answer = httpx.post(f"{url}/predict", json={"customer_id": customer, "purchase_date": "1997-07-15"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["customer_day_id"] == scored["customer_day_id"] and body["defaults_used"] == []
        assert body["predicted_spend_90d"] == pytest.approx(scored["predicted_spend_90d"], rel=1e-4)
        # A flight is not a customer: the use case's own request model refuses it, naming the field.
        wrong = httpx.post(f"{url}/predict", json={"carrier": "UA", "flight_number": 1})
        assert wrong.status_code == 422 and "customer_id" in wrong.text
        assert httpx.post(f"{url}/predict/live", json={"customer_id": customer}).status_code == 404
        batch = httpx.post(f"{url}/predict/batch", json={"requests": [{"customer_id": customer,
                                                                        "purchase_date": "1997-07-15"}]})
        assert batch.status_code == 200 and batch.json()["predictions"][0]["customer_day_id"] == body["customer_day_id"]
    finally:
        stop_group(server)
