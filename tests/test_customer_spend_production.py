"""Customer spend on the production profile: the same machinery that runs flights on PostgreSQL, Redis
and Celery runs the second use case there unchanged. Enabled alone, on servers of its own (both use
cases on shared servers: test_several_use_cases.py), one Celery worker, the slice of test_customer_spend.py
(1997-01-01 .. 1997-07-15): replay, raw, its dbt models on dbt-postgres, Feast's registry in PostgreSQL
and its online store in Redis, a regression gated on RMSE, batch predictions, the retrain decision
counting matured outcomes, and `/predict` answered from Redis."""

from __future__ import annotations

import json
import os
import time

import pyarrow.parquet as pq
import pytest

from fault_helpers import env_for, start, stop_group
from mlplatform.ingest.lake import Lake
from mlplatform.state import StatePaths
from servers import WORKERS, free_port, mlplatform, production_servers, psql, start_workers, stop_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spend(tmp_path_factory):
    root = tmp_path_factory.mktemp("spend_production")
    home = root / "home"
    home.mkdir()
    with production_servers(root / "servers") as (pg, redis):
        env = env_for(home, MLPLATFORM_USE_CASES="customer_spend", MLPLATFORM_PROFILE="production",
                      MLPLATFORM_POSTGRES_URL=pg.url, MLPLATFORM_REDIS_URL=redis.url)
        try:
            mlplatform(env, "prepare")
            start_workers(home, env, "spend1")
            mlplatform(env, "replay", "--through", "1997-07-10")
            first = mlplatform(env, "pipeline").stdout
            mlplatform(env, "replay", "--days", "5")
            second = mlplatform(env, "pipeline", "--no-retrain").stdout
            yield {"home": home, "env": env, "pg": pg, "redis": redis, "first": first, "second": second}
        finally:
            if "spend1" in WORKERS:
                stop_worker("spend1")


def test_its_stages_run_on_postgres_redis_and_a_worker(spend) -> None:
    import redis as redis_client

    pg_url = spend["pg"].url
    assert "champion: version 1" in spend["first"] and "0 failed" in spend["first"], spend["first"]
    # Every step on the worker; Dagster's runs, the registry and the warehouse in PostgreSQL.
    events = psql(pg_url, "select event from event_logs where event like '%in celery worker%'")
    assert events and all("spend1@" in body for (body,) in events)
    assert set(dict(psql(pg_url, "select status, count(*) from runs group by status"))) == {"SUCCESS"}
    assert psql(pg_url, "select count(*) from mlflow.model_versions")[0][0] == 1
    # Its dbt models on dbt-postgres: one row per customer and day, over every landed day.
    rows, keys, days = psql(pg_url, "select count(*), count(distinct customer_day_id), count(distinct purchase_date) "
                                     "from analytics.fct_customer_purchases")[0]
    assert rows == keys > 1000 and days == 196
    assert redis_client.Redis.from_url(spend["redis"].url).dbsize() > 1000  # Feast's online rows
    # Gated on its own metric; the retrain decision counts only outcomes known 90 days on.
    status = json.loads(mlplatform(spend["env"], "status", "--json").stdout)
    champion = status["models"]["aliases"]["champion"]
    assert champion["version"] == 1 and champion["gate"] == "passed" and champion["holdout_rmse"] > 0
    assert "rows labeled since the champion's last training day 1997-04-11" in spend["second"], spend["second"]
    scored = pq.read_table(Lake(StatePaths.resolve(spend["home"]).exports).path("customer_spend_predictions", "1997-07-15"))
    assert scored.num_rows > 10 and scored.column("predicted_spend_90d").null_count == 0


def test_its_route_answers_from_redis_as_its_batch_did(spend) -> None:
    import httpx

    scored = pq.read_table(Lake(StatePaths.resolve(spend["home"]).exports).path("customer_spend_predictions", "1997-07-15"))
    row = scored.slice(0, 1).to_pylist()[0]
    port, token = free_port(), "spend-" + os.urandom(12).hex()
    server = start(spend["home"], "serve", "--port", str(port), "--quiet",
                   **{k: v for k, v in spend["env"].items() if k.startswith("MLPLATFORM_")}, MLPLATFORM_API_TOKEN=token)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("model_version") == 1:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.5)
        request = {"customer_id": row["customer_id"], "purchase_date": "1997-07-15"}
        assert httpx.post(f"{url}/predict", json=request, timeout=30).status_code == 401
        answer = httpx.post(f"{url}/predict", json=request, timeout=30, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["customer_day_id"] == row["customer_day_id"] and body["defaults_used"] == [], body
        assert body["predicted_spend_90d"] == pytest.approx(row["predicted_spend_90d"], rel=1e-4)
    finally:
        stop_group(server)
