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

from fault_helpers import mlplatform
from mlplatform.ingest.lake import Lake
from mlplatform.state import StatePaths

pytestmark = pytest.mark.slow
USE_CASE = {"MLPLATFORM_USE_CASES": "customer_spend"}


@pytest.fixture(scope="module")
def spend(tmp_path_factory):
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


def test_a_regression_is_trained_gated_on_rmse_and_deployed(spend):
    from mlplatform.features.training import latest_manifest

    assert "retrain: no champion yet" in spend["first"] and "champion: version 1" in spend["first"]
    manifest = latest_manifest(spend["paths"].training_sets)
    # The training set reads only days whose outcomes were known (90 days before the newest day).
    assert manifest["window"]["last_day"] == "1997-04-11"
    status = json.loads(mlplatform(spend["paths"].home, "status", "--json", **USE_CASE).stdout)
    champion = status["models"]["aliases"]["champion"]
    assert champion["version"] == 1 and champion["gate"] == "passed" and champion["holdout_rmse"] > 0
    assert status["live_model"] == {} and status["lake"]["purchases"]["count"] == 196
    predictions = Lake(spend["paths"].exports)
    newest = predictions.days("predictions")[-1]
    scored = pq.read_table(predictions.path("predictions", newest)).to_pandas()
    assert newest == "1997-07-15" and scored["predicted_spend_90d"].notna().all() and len(scored) > 10


def test_the_retrain_decision_counts_only_matured_outcomes(spend):
    exports = Lake(spend["paths"].exports)
    matured_since = [d for d in exports.days("fct_customer_purchases") if "1997-04-11" < d <= "1997-04-16"]
    rows = sum(pq.read_metadata(exports.path("fct_customer_purchases", d)).num_rows for d in matured_since)
    assert len(matured_since) == 5
    assert f"{rows:,} rows labeled since the champion's last training day 1997-04-11" in spend["second"], spend["second"]
