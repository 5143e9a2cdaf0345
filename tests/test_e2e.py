"""End to end: the real `dagster dev` (webserver and daemon), its sensors, and Dagster's GraphQL API.

History is built headlessly (`mlplatform pipeline`, which also trains and deploys the first
champion); then `dagster dev` runs with its sensors on, two more days land, and the sensors must
carry them through the raw stage, dbt, the online store and a retrain to a new champion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fault_helpers import stop_group
from servers import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SENSORS = ('{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: '
           '"mlplatform"}) { ... on Sensors { results { name sensorState { status } } } '
           '... on PythonError { message } } }')
RUNS = "{ runsOrError(limit: 200) { ... on Runs { results { runId jobName status tags { key value } } } } }"
SETTINGS = {  # a small model, and a policy that retrains on the two new days
    "MLPLATFORM_MODEL_HOLDOUT_DAYS": "4", "MLPLATFORM_MODEL_VALIDATION_DAYS": "4", "MLPLATFORM_MODEL_MAX_EPOCHS": "2",
    "MLPLATFORM_MODEL_MIN_TRAIN_ROWS": "500", "MLPLATFORM_MODEL_MIN_TRAIN_DAYS": "3",
    "MLPLATFORM_MODEL_GATE_AGAINST_BASELINES": "false",  # two epochs on days: automation, not model quality
    "MLPLATFORM_RETRAIN_LIVE_MODEL": "false",  # the live model's line is tested in test_model.py
    "MLPLATFORM_MODEL_GATE_TOLERANCE": "1",
    "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_ROWS": "500", "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "0",
    "MLPLATFORM_TRAINING_DEVICE": "cpu", "MLPLATFORM_SENSORS": "running",
}


def _runs(url: str) -> list[dict]:
    answer = httpx.post(f"{url}/graphql", json={"query": RUNS}, timeout=10).json()
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in answer["data"]["runsOrError"]["results"]]


def _failures(url: str, run_id: str) -> str:
    """What a failed run's steps raised, for the assertion message."""
    query = ('{ logsForRun(runId: "%s") { ... on EventConnection { events { __typename '
             '... on ExecutionStepFailureEvent { stepKey error { message stack } } '
             '... on RunFailureEvent { message } } } } }' % run_id)
    events = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10).json()["data"]["logsForRun"].get("events", [])
    return "\n".join(f"{e.get('stepKey', 'run')}: {(e.get('error') or {}).get('message') or e.get('message')}"
                     f"{''.join((e.get('error') or {}).get('stack') or [])[-2000:]}"
                     for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent"))


def _freshness(url: str, assets: list[str]) -> list[str]:
    """The UI's freshness status of each asset, as the daemon last evaluated it."""
    keys = ", ".join('{path: ["%s"]}' % a for a in assets)
    query = "{ assetNodes(assetKeys: [%s]) { assetKey { path } freshnessStatusInfo { freshnessStatus } } }" % keys
    nodes = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10).json()["data"]["assetNodes"]
    found = {n["assetKey"]["path"][0]: (n["freshnessStatusInfo"] or {}).get("freshnessStatus") for n in nodes}
    return [found.get(a) for a in assets]


def _champion(home: Path) -> int | None:
    from mlplatform.model.deployment import served_champion
    from mlplatform.state import StatePaths

    champion = served_champion(StatePaths.resolve(home))
    return champion["version"] if champion else None


def _messages(url: str, run_id: str) -> str:
    """Every message of a run's event log (the run monitoring's reason is an engine event)."""
    query = '{ logsForRun(runId: "%s") { ... on EventConnection { events { ... on MessageEvent { message } } } } }' % run_id
    events = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10).json()["data"]["logsForRun"].get("events", [])
    return "\n".join(e.get("message") or "" for e in events)


def _kill_the_run_held_at_dbt(home: Path, limit: float = 240) -> int:
    """`kill -9` the run worker held at the `dbt_build` crash point, and dbt's process under it."""
    import psutil

    marker = home / "paused_at_dbt_build"
    deadline = time.monotonic() + limit
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline, "no run reached dbt"
        time.sleep(0.5)
    worker = psutil.Process(int(marker.read_text()))
    for process in [*worker.children(recursive=True), worker]:
        process.kill()
    return worker.pid


def test_sensors_carry_new_days_through_every_stage_to_a_new_champion(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, **SETTINGS, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # dbt, as `make` puts it

    def mlplatform(*args: str) -> None:
        done = subprocess.run([str(BIN / "mlplatform"), *args], env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    mlplatform("replay", "--through", "2013-01-14")
    mlplatform("pipeline")
    assert _champion(home) == 1

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "dagster-dev.log", "w")
    # The first run to reach dbt is held there, to be killed: the daemon's run monitoring must fail
    # it and the downstream sensor must redo its days.
    server = subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                              env={**env, "MLPLATFORM_PAUSE_AT": "dbt_build"}, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = httpx.post(f"{url}/graphql", json={"query": SENSORS}, timeout=10).json()
                sensors = answer["data"]["sensorsOrError"]["results"]
                break
            except (httpx.HTTPError, KeyError, ValueError, TypeError):
                assert time.monotonic() < deadline and server.poll() is None, "dagster dev did not come up"
                time.sleep(1)
        # Every sensor is on from the start.
        assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
            name: "RUNNING" for name in ("landing_sensor", "downstream_sensor", "retrain_sensor", "run_failure_sensor",
                                         "freshness_sensor")}
        before = {r["runId"] for r in _runs(url)}

        mlplatform("replay", "--days", "2")
        killed = _kill_the_run_held_at_dbt(home)
        deadline = time.monotonic() + 480
        while True:
            runs = [r for r in _runs(url) if r["runId"] not in before]
            by_sensor = {}
            for run in runs:
                by_sensor.setdefault(run["tags"].get("dagster/sensor_name"), []).append(run)
            failed = [r for r in runs if r["status"] == "FAILURE" and r["jobName"] != "daily_refresh"]
            assert not failed, f"sensor runs failed: {failed}\n" + "\n".join(_failures(url, r["runId"]) for r in failed)
            done = all(any(r["status"] == "SUCCESS" for r in by_sensor.get(s, []))
                       for s in ("landing_sensor", "downstream_sensor", "retrain_sensor"))
            if done and (_champion(home) or 0) >= 2:
                break
            assert time.monotonic() < deadline, f"not there in time: {[(r['jobName'], r['status']) for r in runs]}"
            time.sleep(2)
        # The killed run was failed with its reason (not left STARTED: the code server saw its child die;
        # had the server died too, run monitoring's liveness check would), and its days were redone.
        [dead] = [r for r in by_sensor["downstream_sensor"] if r["status"] == "FAILURE"]
        reason = _messages(url, dead["runId"])
        assert "was terminated by signal 9" in reason or "the run's worker process is gone" in reason, reason
        refreshed = [r for r in by_sensor["downstream_sensor"] if r["status"] == "SUCCESS" and r["jobName"] == "daily_refresh"]
        assert any(r["tags"]["mlplatform/days"].startswith(dead["tags"]["mlplatform/days"].split("..")[0]) for r in refreshed)
        assert killed
        landing = [r for r in by_sensor["landing_sensor"] if r["status"] == "SUCCESS"]
        from mlplatform.partitions import days_between

        # Each landing file loaded once, alone or in a range. A tick may fall between the replay's
        # writes of one day's tables, so a day's files may come in two runs.
        loaded = [(table, day) for r in landing for table in r["tags"]["mlplatform/files"].split(",")
                  for day in ([r["tags"]["dagster/partition"]] if "dagster/partition" in r["tags"]
                              else days_between(r["tags"]["dagster/asset_partition_range_start"],
                                                r["tags"]["dagster/asset_partition_range_end"]))]
        assert sorted(loaded) == [(table, day) for table in ("flights", "weather") for day in ("2013-01-15", "2013-01-16")]
        retrain = next(r for r in by_sensor["retrain_sensor"] if r["status"] == "SUCCESS")
        assert retrain["tags"]["mlplatform/trigger"] == "retrain:new_labeled_rows"
        assert "rows labeled since the champion's last training day 2013-01-14" in retrain["tags"]["mlplatform/retrain_reason"]

        from mlplatform.model.tracking import CHAMPION, version_for_alias
        from mlplatform.state import StatePaths

        assert int(version_for_alias(StatePaths.resolve(home), CHAMPION).version) >= 2  # MLflow agrees

        # The daemon evaluates the freshness policies: what was just refreshed and deployed is fresh.
        deadline = time.monotonic() + 90
        while (statuses := _freshness(url, ["online_features", "deployed_model"])) != ["HEALTHY", "HEALTHY"]:
            assert time.monotonic() < deadline, f"freshness not evaluated as fresh: {statuses}"
            time.sleep(3)
    finally:
        stop_group(server)
        log.close()
