"""Several use cases at once: flights and customer spend enabled side by side on one state directory
and one Dagster instance, each a code location of its own (`mlplatform.locations`) with its own
names (`mlplatform.usecases.named`), the commands acting on each in turn or on one alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fault_helpers import mlplatform, start, stop_group
from mlplatform.ingest.lake import Lake

BOTH = {"MLPLATFORM_USE_CASES": "flights,customer_spend"}

_NAMES = """
import json, sys
import mlplatform.locations as locations
defs = getattr(locations, sys.argv[1])
print(json.dumps({"assets": sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()),
                  "jobs": sorted(j.name for j in defs.jobs), "sensors": sorted(s.name for s in defs.sensors)}))
"""


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Three days of each landed and refreshed by one `mlplatform pipeline` (no model: each use case's
    own modules train theirs), then a second pipeline with nothing new."""
    home = tmp_path_factory.mktemp("several") / "home"
    landed = mlplatform(home, "replay", "--days", "3", "--no-events", **BOTH)
    assert landed.returncode == 0, landed.stderr
    first = mlplatform(home, "pipeline", "--no-retrain", **BOTH)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    again = mlplatform(home, "pipeline", "--no-retrain", **BOTH)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    return {"home": home, "landed": landed.stdout, "first": first.stdout, "again": again.stdout}


@pytest.mark.slow
def test_each_use_case_is_a_code_location_with_names_of_its_own():
    """Each location builds in a process of its own; no asset key, job or sensor is in both, and the
    empty namespace (flights) keeps the machinery's bare names."""
    env = {**os.environ, **BOTH}
    loads = {name: subprocess.Popen([sys.executable, "-c", _NAMES, name], env=env, stdout=subprocess.PIPE, text=True)
             for name in ("flights", "customer_spend")}
    names = {name: json.loads(process.communicate(timeout=300)[0]) for name, process in loads.items()}
    flights, spend = names["flights"], names["customer_spend"]
    for kind in ("assets", "jobs", "sensors"):
        assert not set(flights[kind]) & set(spend[kind]), kind
    assert {"training_set", "deployed_model", "online_features"} <= set(flights["assets"])
    assert {"customer_spend_training_set", "customer_spend_deployed_model", "raw_purchases",
            "fct_customer_purchases"} <= set(spend["assets"])
    assert "customer_spend_daily_refresh" in spend["jobs"] and "daily_refresh" in flights["jobs"]
    assert "customer_spend_retrain_sensor" in spend["sensors"] and "landing_sensor" in flights["sensors"]
    # A process builds one use case: asked for a second, it says so instead of mixing them.
    mixed = subprocess.run([sys.executable, "-c", "import mlplatform.locations as l; l.flights; l.customer_spend"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert mixed.returncode != 0 and "already built the use case 'flights'" in mixed.stderr


@pytest.mark.slow
def test_one_pipeline_runs_each_use_case_into_one_instance_under_its_own_names(both):
    import dagster as dg

    from mlplatform.state import StatePaths

    assert "== flights ==" in both["first"] and "== customer_spend ==" in both["first"]
    assert "customer_spend_daily_refresh 1997-01-01..1997-01-03" in both["first"]
    assert "daily_refresh      2013-01-01..2013-01-03" in both["first"], both["first"]
    # Each replay keeps its own cursor in the shared landing zone.
    assert "landed through 2013-01-03" in both["landed"] and "landed through 1997-01-03" in both["landed"]
    paths = StatePaths.resolve(both["home"])
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        flights = instance.get_materialized_partitions(dg.AssetKey("online_features"))
        spend = instance.get_materialized_partitions(dg.AssetKey("customer_spend_online_features"))
        runs = {r.job_name for r in instance.get_runs()}
    assert flights == {"2013-01-01", "2013-01-02", "2013-01-03"}
    assert spend == {"1997-01-01", "1997-01-02", "1997-01-03"}
    assert {"daily_refresh", "customer_spend_daily_refresh", "raw_daily", "customer_spend_raw_daily"} <= runs
    # Nothing new: the second pipeline runs nothing for either, and every row is stored once.
    assert both["again"].count("0 run(s), 0 failed") == 2, both["again"]
    lake = Lake(paths.lake)
    facts = [pq.read_table(lake.path("purchases", d)).to_pandas() for d in lake.days("purchases")]
    assert sum(len(f) for f in facts) == len(set().union(*(set(zip(f.customer_id, f.purchase_date, f.purchase_number))
                                                          for f in facts)))
    status = json.loads(mlplatform(both["home"], "status", "--json", **BOTH).stdout)["use_cases"]
    assert set(status["flights"]["warehouse"]) >= {"fct_flights"} and "fct_customer_purchases" not in status["flights"]["warehouse"]
    assert set(status["customer_spend"]["warehouse"]) == {"fct_customer_purchases", "feat_customer_history"}
    assert status["customer_spend"]["lake"]["purchases"]["count"] == 3 and status["flights"]["lake"]["flights"]["count"] == 3


@pytest.mark.slow
def test_a_command_acts_on_one_use_case_when_told_and_serve_answers_for_each_under_its_namespace(both):
    import httpx

    from servers import free_port

    alone = mlplatform(both["home"], "--use-case", "customer_spend", "replay", "--days", "1", "--no-events", **BOTH)
    assert alone.returncode == 0 and "landed 1 day(s) 1997-01-04" in alone.stdout and "==" not in alone.stdout
    unknown = mlplatform(both["home"], "--use-case", "bikes", "status", **BOTH)
    assert unknown.returncode == 2 and "--use-case bikes: not an enabled use case (enabled: flights, customer_spend)" in unknown.stderr
    ambiguous = mlplatform(both["home"], "rollback", **BOTH)
    assert ambiguous.returncode == 2 and "say which one to rollback with --use-case" in ambiguous.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(both["home"], "serve", "--port", str(port), "--quiet", **BOTH)
    try:
        deadline = time.monotonic() + 120
        listed = None
        while listed is None and time.monotonic() < deadline:
            try:
                listed = httpx.get(f"{url}/use_cases", timeout=5).json()
            except httpx.HTTPError:
                assert server.poll() is None, server.log.read_text()[-3000:]
                time.sleep(0.5)
        assert listed["/"]["health"]["status"] == listed["customer_spend"]["health"]["status"] == "no model", listed
        # The empty namespace keeps the root; the other answers under its own, with its own request.
        assert "Flight" in httpx.get(f"{url}/openapi.json").json()["info"]["title"]
        assert "spend" in httpx.get(f"{url}/customer_spend/openapi.json").json()["info"]["title"].lower()
        wrong = httpx.post(f"{url}/customer_spend/predict", json={"carrier": "UA", "flight_number": 1})
        assert wrong.status_code == 422 and "customer_id" in wrong.text
        spend = httpx.post(f"{url}/customer_spend/predict", json={"customer_id": "1", "purchase_date": "1997-01-02"})
        assert spend.status_code == 503 and "no champion" in spend.text, spend.text
        # A use case's server gone: the router answers for it with a 503 naming it, the other still
        # answers. Then `serve` itself killed alone (not its group): its servers stop with it.
        children = [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
        assert len(children) == 2, children
        spend_server = next(pid for pid in children
                            if "MLPLATFORM_USE_CASE=customer_spend" in Path(f"/proc/{pid}/environ").read_text().split("\0"))
        os.kill(spend_server, signal.SIGKILL)
        gone = httpx.post(f"{url}/customer_spend/predict", json={"customer_id": "1", "purchase_date": "1997-01-02"})
        assert gone.status_code == 503 and "the server of /customer_spend does not answer" in gone.text, gone.text
        assert httpx.get(f"{url}/health").status_code == 200
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        deadline = time.monotonic() + 30
        while _running(next(pid for pid in children if pid != spend_server)):
            assert time.monotonic() < deadline, "flights' server outlived the serve process"
            time.sleep(0.2)
    finally:
        stop_group(server)


def _running(pid: int) -> bool:
    """Whether the process is there and not a zombie left for its new parent to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_dagster_dev_runs_a_location_per_use_case_and_their_sensors_carry_each_ones_day(both):
    """`mlplatform dev` with both enabled: one code location each in the one UI and daemon, every
    sensor of each on, and a day landed for customer spend carried by its own sensors, in runs of
    its own jobs, while flights' sensors find nothing to do."""
    import httpx

    from servers import free_port

    landed = mlplatform(both["home"], "--use-case", "customer_spend", "replay", "--days", "1", "--no-events", **BOTH)
    assert landed.returncode == 0, landed.stderr
    day = landed.stdout.split("landed through ")[-1].strip()

    def online_days() -> set[str]:
        import dagster as dg

        from mlplatform.state import StatePaths

        with dg.DagsterInstance.from_config(str(StatePaths.resolve(both["home"]).dagster_home)) as instance:
            return instance.get_materialized_partitions(dg.AssetKey("customer_spend_online_features"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(both["home"], "dev", "--port", str(port), **BOTH, MLPLATFORM_SENSORS="running")
    sensors_of = ('{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: '
                  '"%s"}) { ... on Sensors { results { name sensorState { status } } } } }')
    runs = "{ runsOrError(limit: 50) { ... on Runs { results { jobName status tags { key value } } } } }"
    try:
        deadline = time.monotonic() + 180
        sensors = {}
        while len(sensors) < 2:
            for location in ("flights", "customer_spend"):
                try:
                    found = httpx.post(f"{url}/graphql", json={"query": sensors_of % location}, timeout=10).json()
                    sensors[location] = {s["name"]: s["sensorState"]["status"]
                                         for s in found["data"]["sensorsOrError"]["results"]}
                except (httpx.HTTPError, KeyError, TypeError, ValueError):
                    pass
            assert time.monotonic() < deadline and server.poll() is None, server.log.read_text()[-3000:]
            time.sleep(1)
        assert set(sensors["flights"]) == {"landing_sensor", "downstream_sensor", "retrain_sensor",
                                           "run_failure_sensor", "freshness_sensor"}
        assert set(sensors["customer_spend"]) == {f"customer_spend_{n}" for n in sensors["flights"]}
        assert set(sensors["flights"].values()) == set(sensors["customer_spend"].values()) == {"RUNNING"}
        deadline = time.monotonic() + 300
        while True:
            found = httpx.post(f"{url}/graphql", json={"query": runs}, timeout=10).json()["data"]["runsOrError"]["results"]
            launched = [(r["jobName"], r["status"]) for r in found
                        if any(t["key"] == "dagster/sensor_name" for t in r["tags"])]
            assert not [r for r in launched if r[1] == "FAILURE"], launched
            # The days may come in one refresh or two: done once the landed day is online.
            if ("customer_spend_daily_refresh", "SUCCESS") in launched and day in online_days():
                break
            assert time.monotonic() < deadline and server.poll() is None, f"not there in time: {launched}"
            time.sleep(2)
        assert ("customer_spend_raw_daily", "SUCCESS") in launched
        assert {job for job, _ in launched} <= {"customer_spend_raw_daily", "customer_spend_daily_refresh"}, launched
    finally:
        stop_group(server)


@pytest.mark.slow
def test_both_run_on_the_production_profile_through_one_worker(tmp_path_factory, monkeypatch):
    """PostgreSQL and Redis shared by both use cases, one Celery worker taking the steps of either
    (a fresh process per step: a process builds one use case), every row once in each."""
    import dagster as dg

    from fault_helpers import env_for
    from mlplatform.state import StatePaths
    from servers import WORKERS, mlplatform as run, production_servers, psql, start_workers, stop_worker

    # A short path: PostgreSQL's socket lives below it, and a socket's path has a length limit.
    root = tmp_path_factory.mktemp("pg")
    home = root / "home"
    home.mkdir()
    with production_servers(root) as (pg, redis):
        env = env_for(home, **BOTH, MLPLATFORM_PROFILE="production", MLPLATFORM_POSTGRES_URL=pg.url,
                      MLPLATFORM_REDIS_URL=redis.url)
        try:
            run(env, "prepare")
            start_workers(home, env, "both1")
            run(env, "replay", "--days", "2", "--no-events")
            done = run(env, "pipeline", "--no-retrain").stdout
            assert done.count("0 failed") == 2 and "customer_spend_daily_refresh 1997-01-01..1997-01-02" in done, done
            again = run(env, "pipeline", "--no-retrain").stdout
            assert again.count("0 run(s), 0 failed") == 2, again
            monkeypatch.setenv("MLPLATFORM_POSTGRES_URL", pg.url)  # the instance's storage
            with dg.DagsterInstance.from_config(str(StatePaths.resolve(home).dagster_home)) as instance:
                assert instance.get_materialized_partitions(dg.AssetKey("online_features")) == {"2013-01-01", "2013-01-02"}
                assert instance.get_materialized_partitions(dg.AssetKey("customer_spend_online_features")) == {
                    "1997-01-01", "1997-01-02"}
            steps = psql(pg.url, "select event from event_logs where event like '%in celery worker%'")
            assert steps and all("both1@" in body for (body,) in steps)
            # The warehouse in PostgreSQL holds both use cases' models, each day's rows once.
            flights = psql(pg.url, "select count(*), count(distinct flight_id) from analytics.fct_flights")
            spend = psql(pg.url, "select count(*), count(distinct customer_day_id) from analytics.fct_customer_purchases")
            assert flights[0][0] == flights[0][1] > 1000 and spend[0][0] == spend[0][1] > 100, (flights, spend)
        finally:
            if "both1" in WORKERS:
                stop_worker("both1")


def _sharing(flights, spend, name: str):
    """Customer spend's spec with one of flights' names in it."""
    if name == "namespace":
        return spend.model_copy(update={"namespace": ""})
    if name == "table":
        return spend.model_copy(update={"feeds": [*spend.feeds, flights.feeds[0]]})
    return spend.model_copy(update={"model": spend.model.model_copy(update={"experiment": flights.model.experiment})})


@pytest.mark.parametrize("name, refusal", [
    ("namespace", "'flights' and 'customer_spend' have the same namespace"),
    ("table", "'flights' and 'customer_spend' both land a table 'flights'"),
    ("experiment", "'flights' and 'customer_spend' both name 'flight_delay' as an MLflow experiment"),
])
def test_use_cases_that_would_share_a_name_are_refused(monkeypatch, name, refusal):
    """They share one instance and state directory: a namespace, a table or an MLflow experiment or
    model in two would make their assets, folders or champions one."""
    import mlplatform.usecases as usecases

    real = usecases.load

    def load(use_case):
        spec = real(use_case)
        return _sharing(real("flights"), spec, name) if use_case == "customer_spend" else spec

    monkeypatch.setattr(usecases, "load", load)
    usecases._side_by_side.cache_clear()
    try:
        with pytest.raises(usecases.UseCaseError, match=refusal):
            usecases._side_by_side(("flights", "customer_spend"))
        with pytest.raises(usecases.UseCaseError, match="enables a use case twice"):
            usecases._side_by_side(("flights", "flights"))
    finally:
        usecases._side_by_side.cache_clear()
