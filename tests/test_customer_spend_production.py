"""Customer spend on the production profile, beside flights: the same machinery that runs flights on
PostgreSQL, Redis and Celery runs the second use case there unchanged, and both share the servers
and one Celery worker (a fresh process per step: a process builds one use case). The slice of
test_customer_spend.py (1997-01-01 .. 1997-07-15) and two days of flights: replay, raw, the dbt
models of each on dbt-postgres, Feast's registry in PostgreSQL and its online store in Redis, a
regression gated on RMSE, batch predictions, the retrain decision counting matured outcomes, and
`/predict` answered from Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pyarrow.parquet as pq
import pytest

from fault_helpers import env_for, start
from mlplatform.ingest.lake import Lake
from mlplatform.state import StatePaths
from servers import WORKERS, mlplatform, free_port, psql, start_postgres, start_redis, start_workers, stop_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spend(tmp_path_factory):
    root = tmp_path_factory.mktemp("spend_production")
    pg, redis = start_postgres(root / "servers"), start_redis(root / "servers")
    home = root / "home"
    home.mkdir()
    env = env_for(home, MLPLATFORM_USE_CASES="flights,customer_spend", MLPLATFORM_PROFILE="production",
                  MLPLATFORM_POSTGRES_URL=pg.url, MLPLATFORM_REDIS_URL=redis.url)
    try:
        mlplatform(env, "prepare")
        start_workers(home, env, "both1")
        mlplatform(env, "replay", "--through", "1997-07-10")  # flights' calendar starts later: not yet
        mlplatform(env, "--use-case", "flights", "replay", "--days", "2", "--no-events")
        first = mlplatform(env, "pipeline").stdout
        mlplatform(env, "--use-case", "customer_spend", "replay", "--days", "5")
        second = mlplatform(env, "pipeline", "--no-retrain").stdout
        yield {"home": home, "env": env, "pg": pg, "redis": redis, "first": first, "second": second}
    finally:
        if "both1" in WORKERS:
            stop_worker("both1")
        redis.stop()
        if not pg.external:
            pg.stop("immediate")


def test_its_stages_run_on_postgres_redis_and_a_worker(spend) -> None:
    import redis as redis_client

    pg_url = spend["pg"].url
    assert "champion: version 1" in spend["first"] and spend["first"].count("0 failed") == 2, spend["first"]
    # Every step of either use case on the one worker; Dagster's runs, the registry and the
    # warehouse in PostgreSQL.
    events = psql(pg_url, "select event from event_logs where event like '%in celery worker%'")
    assert events and all("both1@" in body for (body,) in events)
    assert set(dict(psql(pg_url, "select status, count(*) from runs group by status"))) == {"SUCCESS"}
    assert psql(pg_url, "select count(*) from mlflow.model_versions")[0][0] == 1
    # Its dbt models on dbt-postgres: one row per customer and day, over every landed day.
    rows, keys, days = psql(pg_url, "select count(*), count(distinct customer_day_id), count(distinct purchase_date) "
                                     "from analytics.fct_customer_purchases")[0]
    assert rows == keys > 1000 and days == 196
    assert redis_client.Redis.from_url(spend["redis"].url).dbsize() > 1000  # Feast's online rows
    # Gated on its own metric; the retrain decision counts only outcomes known 90 days on.
    status = json.loads(mlplatform(spend["env"], "--use-case", "customer_spend", "status", "--json").stdout)
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
    server = start(spend["home"], "--use-case", "customer_spend", "serve", "--port", str(port), "--quiet",
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
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_flights_beside_it_runs_through_the_same_servers_and_worker(spend, monkeypatch) -> None:
    """Flights' two days went through the same worker into the same PostgreSQL and Redis, under its
    own names, each row once; the second pipeline found nothing new for flights."""
    import dagster as dg

    assert re.search(r"\ndaily_refresh +2013-01-01\.\.2013-01-02 ", spend["first"]), spend["first"]
    assert re.search(r"\ncustomer_spend_daily_refresh +1997-01-01\.\.1997-07-10 ", spend["first"]), spend["first"]
    assert spend["second"].count("0 run(s), 0 failed") == 1, spend["second"]
    monkeypatch.setenv("MLPLATFORM_POSTGRES_URL", spend["pg"].url)  # the instance's storage
    with dg.DagsterInstance.from_config(str(StatePaths.resolve(spend["home"]).dagster_home)) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("online_features")) == {"2013-01-01", "2013-01-02"}
        spend_online = instance.get_materialized_partitions(dg.AssetKey("customer_spend_online_features"))
        assert "1997-07-15" in spend_online and "2013-01-01" not in spend_online
    rows, keys = psql(spend["pg"].url, "select count(*), count(distinct flight_id) from analytics.fct_flights")[0]
    assert rows == keys > 1000
