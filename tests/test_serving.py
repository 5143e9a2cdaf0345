"""The online prediction API, served for real by uvicorn on a free loopback port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from helpers import materialize_asset, materialize_model
from servers import free_port
from shared_state import FLIGHTS_THROUGH as LAST_DAY, flights_copy
from mlplatform.state import StatePaths

# A small model: serving, not model quality, is the point (the gate reports the baselines only).
SPEC = {"holdout_days": 7, "validation_days": 7, "max_epochs": 4, "min_train_rows": 500,
        "gate_against_baselines": False}
FLIGHT = {"carrier": "UA", "flight_number": 1545, "origin": "EWR", "dest": "IAH",
          "scheduled_departure": "2013-02-04T17:15:00", "tail_number": "N14228"}


def _stream_days(paths: StatePaths, first: str, last: str) -> None:
    from datetime import date, timedelta

    from mlplatform.features.repo import open_store
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.defs.flights.stream_events import day_events
    from mlplatform.streaming.topic import SqliteTopic, topic_file

    topic = SqliteTopic(topic_file(paths))
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    for n in range((end - start).days + 1):
        topic.publish([e.to_json() for e in day_events(start + timedelta(days=n))])
    consumer = Consumer(topic, open_store(paths))
    while consumer.poll().events:
        pass
    topic.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A deployed champion and the last day online; then `mlplatform serve` in its own process."""
    with flights_copy(tmp_path_factory, "serving") as paths:
        with dg.instance_for_test(temp_dir=str(paths.dagster_home)) as instance:
            assert materialize_asset(instance, paths, "online_features", partition=LAST_DAY).success
            models = materialize_model(instance, paths, ["trained_model", "model_evaluation", "deployed_model"], SPEC,
                                       raise_on_error=True)
            assert models.success
            # The live model, and the last days' departures through the stream into the online store.
            assert materialize_asset(instance, paths, "live_training_set").success
            live = materialize_model(instance, paths, ["live_trained_model", "live_model_evaluation",
                                                       "live_deployed_model"], SPEC, raise_on_error=True)
            assert live.success
            _stream_days(paths, "2013-02-03", "2013-02-04")
            port = free_port()
            output = paths.home.parent / "serve.log"  # a file, not a pipe: the access log must never block
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("mlplatform")), "--home", str(paths.home), "serve",
                 "--port", str(port), "--reload-seconds", "0.5"], stdout=output.open("w"), stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            try:
                for _ in range(120):
                    try:
                        if httpx.get(f"{url}/health", timeout=1).json()["model_version"] == 1:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.5)
                else:
                    raise AssertionError("the server did not come up")
                yield {"url": url, "paths": paths, "instance": instance, "output": output}
            finally:
                process.terminate()
                process.wait(timeout=30)


def test_predict_a_real_flight(server) -> None:
    answer = httpx.post(f"{server['url']}/predict", json=FLIGHT)
    assert answer.status_code == 200
    body = answer.json()
    assert body["flight_id"] == "UA1545-EWR-20130204-1715"
    assert 0 < body["delay_probability"] < 1 and body["model_version"] == 1
    assert "carrier" not in body["defaults_used"] and "plane" not in body["defaults_used"]


def test_a_configured_token_keeps_strangers_out(server, tmp_path: Path) -> None:
    """A second `serve` on the same state with a token in a secret file: /health stays open (the
    probe), every other route answers 401 without the exact bearer token, and the token appears in
    no output: the server's, the 401's, or `mlplatform status`'s."""
    token = "k8s-secret-" + os.urandom(12).hex()
    secret = tmp_path / "api-token"
    secret.write_text(token + "\n")
    port, output = free_port(), tmp_path / "serve-with-token.log"
    cli = str(Path(sys.executable).with_name("mlplatform"))
    env = {**os.environ, "MLPLATFORM_API_TOKEN_FILE": str(secret)}
    process = subprocess.Popen([cli, "--home", str(server["paths"].home), "serve", "--port", str(port)],
                               stdout=output.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1).json()["model_version"] == 1:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"the server did not come up: {output.read_text()[-2000:]}")
        answers = [httpx.post(f"{url}/predict", json=FLIGHT),
                   httpx.post(f"{url}/predict", json=FLIGHT, headers={"Authorization": f"Bearer {token[:-1]}x"}),
                   httpx.post(f"{url}/predict", json=FLIGHT, headers={"Authorization": token}),
                   httpx.get(f"{url}/metrics"), httpx.get(f"{url}/docs"), httpx.get(f"{url}/openapi.json")]
        assert [a.status_code for a in answers] == [401] * 6
        assert answers[0].headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer <MLPLATFORM_API_TOKEN>" in answers[0].json()["detail"]
        good = httpx.post(f"{url}/predict", json=FLIGHT, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and good.json()["flight_id"] == "UA1545-EWR-20130204-1715"
        metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
        assert 'mlplatform_request_errors_total{endpoint="/predict",status="401"} 3.0' in metrics
        status = subprocess.run([cli, "--home", str(server["paths"].home), "status"], capture_output=True,
                                text=True, env=env, timeout=120)
        assert status.returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
    said = output.read_text()
    assert "bearer token required" in said
    for text in (said, status.stdout + status.stderr, *(a.text for a in answers)):
        assert token not in text


def test_two_worker_processes_answer_on_one_port_and_the_log_keeps_every_answer(server, tmp_path: Path) -> None:
    """`serve --workers 2`: two processes, each saying what it serves, answer on one port; every
    answer is in the prediction log once, whichever process gave it (their files are named by pid)."""
    import duckdb

    port, output = free_port(), tmp_path / "serve-workers.log"
    process = subprocess.Popen([str(Path(sys.executable).with_name("mlplatform")), "--home", str(server["paths"].home),
                                "serve", "--port", str(port), "--workers", "2", "--quiet"],
                               stdout=output.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while output.read_text().count("mlplatform serve: champion v1") < 2:
            assert time.monotonic() < deadline and process.poll() is None, output.read_text()[-2000:]
            time.sleep(0.5)
        workers = set(re.findall(r"\(worker (\d+)\)", output.read_text()))
        assert len(workers) == 2 and str(process.pid) not in workers
        with httpx.Client() as client:  # a new connection per request: the kernel spreads them
            ids = [client.post(f"{url}/predict", json={**FLIGHT, "flight_number": 8000 + n},
                               headers={"Connection": "close"}).json()["request_id"] for n in range(40)]
    finally:
        process.terminate()
        process.wait(timeout=60)
    logged = duckdb.execute(f"select request_id, count(*) from read_parquet('{server['paths'].home}/prediction_log/*/*.parquet', "
                            "union_by_name = true) where flight_id like 'UA8%' group by request_id").fetchall()
    assert sorted(r for r, _ in logged) == sorted(ids) and {n for _, n in logged} == {1}


def test_serve_says_where_and_what_it_serves_and_logs_requests(server) -> None:
    httpx.get(f"{server['url']}/health")
    lines = server["output"].read_text().splitlines()
    assert f"mlplatform serve: champion v1 (blend), live champion v1 on {server['url']} (docs: {server['url']}/docs)" \
        in lines
    assert any('"GET /health HTTP/1.1" 200' in line for line in lines)  # the access log


def test_every_answer_is_logged_and_traces_to_its_model_features_and_timestamps(server) -> None:
    """One DuckDB query over the prediction log finds an answer by its request id, with the model
    version that gave it, the feature values it read and the time of each online row."""
    import json

    import duckdb

    url, home = server["url"], server["paths"].home
    flight = {**FLIGHT, "flight_number": 777}
    one = httpx.post(f"{url}/predict", json=flight).json()
    batch = httpx.post(f"{url}/predict/batch", json={"flights": [flight, {**flight, "dest": "ORD"}]}).json()
    live = httpx.post(f"{url}/predict/live", json=flight).json()
    assert httpx.post(f"{url}/predict", json={**flight, "flight_number": "abc"}).status_code == 422
    query = (f"select model, model_version, flight_id, delay_probability, features, features_as_of, endpoint, "
             f"latency_ms from read_parquet('{home}/prediction_log/*/*.parquet', hive_partitioning = true) "
             "where request_id = ? order by flight_id")
    deadline = time.monotonic() + 20  # written every 2 s

    def logged_yet() -> bool:
        try:
            return bool(duckdb.execute(query, [live["request_id"]]).fetchall())
        except duckdb.IOException:  # no file yet
            return False

    while not logged_yet():
        assert time.monotonic() < deadline, "the answers were not logged"
        time.sleep(0.5)

    [(model, version, flight_id, probability, features, as_of, endpoint, latency)] = \
        duckdb.execute(query, [one["request_id"]]).fetchall()
    assert (model, version, flight_id, endpoint) == ("flight_delay", 1, one["flight_id"], "/predict")
    assert probability == pytest.approx(one["delay_probability"]) and latency > 0
    features, as_of = json.loads(features), json.loads(as_of)
    assert features["carrier_code"] == "UA" and "origin_weather__temperature_f" in features
    assert set(as_of) >= {"origin_weather", "route_delay_stats", "plane"}
    # The online row that answered: the newest of the last day materialized (February 4, New York time).
    assert "2013-02-04T05:00:00+00:00" <= as_of["origin_weather"] <= "2013-02-05T05:00:00+00:00"

    logged = duckdb.execute(query, [batch["predictions"][0]["request_id"]]).fetchall()
    assert [(row[2], row[6]) for row in logged] == sorted((p["flight_id"], "/predict/batch") for p in batch["predictions"])
    [live_row] = duckdb.execute(query, [live["request_id"]]).fetchall()
    assert live_row[0] == "flight_delay_live" and "origin_departures" in json.loads(live_row[5])
    assert json.loads(live_row[5])["origin_departures"] == live["same_day_features_as_of"]["origin_departures"]
    every = duckdb.execute(f"select count(*) from read_parquet('{home}/prediction_log/*/*.parquet') "
                           "where flight_id like 'UA777-%'").fetchone()[0]
    assert every == 4  # the refused request is not an answer

    # Asked about a flight of the day the store already holds, the answer read rows from after its
    # departure (22:15 UTC): it says which views, and so does the log. The next day's flight reads
    # only rows from before it.
    later = sorted(view for view, moment in as_of.items() if moment and moment > "2013-02-04T22:15:00+00:00")
    assert "origin_weather" in later and sorted(one["features_after_event"]) == later
    logged_late = duckdb.execute(f"select features_after_event from read_parquet('{home}/prediction_log/*/*.parquet', "
                                 "union_by_name = true) where request_id = ?", [one["request_id"]]).fetchone()[0]
    assert sorted(logged_late.split(",")) == later
    tomorrow = httpx.post(f"{url}/predict", json={**flight, "scheduled_departure": "2013-02-05T17:15:00"}).json()
    assert tomorrow["features_after_event"] == []


def test_the_prediction_log_holds_answers_through_a_full_disk_and_writes_them_once_it_frees(tmp_path: Path) -> None:
    """The log's folder fills up (a size-limited tmpfs): writes fail, the writing thread lives on,
    the answers wait in memory and `/health`'s status says why; once space returns, every answer is
    written exactly once. Past `max_held_rows`, the oldest are dropped and counted."""
    import duckdb

    from fault_helpers import mount_tmpfs
    from mlplatform.serving.prediction_log import PredictionLog, read_log

    folder = tmp_path / "prediction_log"
    mount_tmpfs(folder, "64k")
    try:
        filler = folder / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        log = PredictionLog(folder, flush_seconds=0.2, max_held_rows=30)
        log.start()

        def answer(n: int) -> None:
            log.append(f"r{n}", "/predict", "flight_delay", 1, f"UA{n}-EWR-IAH-2013-02-05", 0.25, 0.001,
                       {**FLIGHT, "flight_number": n}, {"carrier_code": "UA"}, {"plane": "2013-02-04T05:00:00+00:00"})

        for n in range(20):
            answer(n)
        deadline = time.monotonic() + 10
        while log.status()["last_error"] is None:
            assert time.monotonic() < deadline, "the failed write was not reported"
            time.sleep(0.1)
        assert "No space left on device" in log.status()["last_error"]
        for n in range(20, 40):  # arrive while the disk is full: 40 wait, over the 30 held
            answer(n)
        time.sleep(0.6)
        assert log._thread.is_alive()
        status = log.status()
        assert status["waiting_rows"] + status["dropped_rows"] == 40 and status["dropped_rows"] == 10

        filler.unlink()  # space returns
        deadline = time.monotonic() + 10
        while log.status()["waiting_rows"] or log.status()["last_error"]:
            assert time.monotonic() < deadline, f"the held answers were not written: {log.status()}"
            time.sleep(0.1)
        log.close()
        logged = read_log(folder)
        # The newest 30 survive, each once.
        assert sorted(logged["request_id"]) == sorted(f"r{n}" for n in range(10, 40))
        requests = duckdb.execute(f"select request from read_parquet('{folder}/*/*.parquet') "
                                  "where request_id = 'r39'").fetchone()[0]
        assert '"flight_number": 39' in requests
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_batch(server) -> None:
    flights = [FLIGHT, {**FLIGHT, "flight_number": 1714, "origin": "LGA"}, {**FLIGHT, "dest": "ORD"}]
    answer = httpx.post(f"{server['url']}/predict/batch", json={"flights": flights})
    assert answer.status_code == 200
    assert [p["flight_id"][:10] for p in answer.json()["predictions"]] == ["UA1545-EWR", "UA1714-LGA", "UA1545-EWR"]


def test_unknown_airport_and_plane_get_defaults_with_a_flag(server) -> None:
    answer = httpx.post(f"{server['url']}/predict", json={**FLIGHT, "origin": "XYZ", "tail_number": "NOPLANE"})
    assert answer.status_code == 200
    body = answer.json()
    assert {"origin", "route", "plane"} <= set(body["defaults_used"]) and 0 < body["delay_probability"] < 1


@pytest.mark.parametrize("body, field", [
    ({**FLIGHT, "flight_number": "abc"}, "flight_number"),
    ({k: v for k, v in FLIGHT.items() if k != "origin"}, "origin"),
    ({**FLIGHT, "scheduled_departure": "soon"}, "scheduled_departure"),
    ({**FLIGHT, "carrier": "U"}, "carrier"),
])
def test_malformed_requests_get_422_naming_the_field(server, body, field) -> None:
    answer = httpx.post(f"{server['url']}/predict", json=body)
    assert answer.status_code == 422
    assert any(field in error["loc"] for error in answer.json()["detail"])


def test_bad_input_never_gets_a_500(server) -> None:
    url = server["url"]
    for response in (httpx.post(f"{url}/predict", content=b"{not json", headers={"content-type": "application/json"}),
                     httpx.post(f"{url}/predict", json=[]),
                     httpx.post(f"{url}/predict/batch", json={"flights": []}),
                     httpx.post(f"{url}/predict", json={**FLIGHT, "scheduled_departure": "2013-02-30T10:00:00"})):
        assert response.status_code == 422, response.text


def test_dates_out_of_range_get_422_naming_the_field(server) -> None:
    for when in ("1677-06-01T10:00:00", "2262-06-01T10:00:00", "0001-01-01T00:00:00", "9999-12-31T23:00:00"):
        answer = httpx.post(f"{server['url']}/predict", json={**FLIGHT, "scheduled_departure": when})
        assert answer.status_code == 422, (when, answer.text)
        assert any("scheduled_departure" in error["loc"] for error in answer.json()["detail"])
        assert "between 1900-01-01 and 2199-12-31" in answer.text


def test_a_body_over_the_limit_is_refused_before_parsing_and_errors_are_counted(server) -> None:
    url = server["url"]
    huge = {"flights": [FLIGHT] * 100_000}
    answer = httpx.post(f"{url}/predict/batch", json=huge)
    assert answer.status_code == 413 and "request body over" in answer.json()["detail"]
    # Without a declared length (chunked), the limit holds as the bytes arrive.
    import json as _json

    def chunks():
        data = _json.dumps(huge).encode()
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]
    assert httpx.post(f"{url}/predict/batch", content=chunks(),
                      headers={"content-type": "application/json"}).status_code == 413
    assert httpx.post(f"{url}/predict", json={**FLIGHT, "carrier": "U"}).status_code == 422
    text = httpx.get(f"{url}/metrics").text
    assert 'mlplatform_request_errors_total{endpoint="/predict/batch",status="413"} 2.0' in text
    assert 'mlplatform_request_errors_total{endpoint="/predict",status="422"}' in text


def test_a_view_being_materialized_keeps_serving_its_last_values(server) -> None:
    """Feast marks a view MATERIALIZING in the registry while it writes it; the API keeps answering
    with the view's last values instead of failing (Feast's `serve_features_while_materializing`)."""
    import os

    from mlplatform.features.repo import open_store
    from mlplatform.defs.flights.api import Flight
    from mlplatform.serving.features import OnlineFeatureReader

    from feast.feature_view import FeatureViewState

    store = open_store(server["paths"])
    view = store.get_feature_view("plane")
    previous = view.state
    view.state = FeatureViewState.MATERIALIZING
    store.registry.apply_feature_view(view, store.project, commit=True)
    try:
        online = server["paths"].feast / "online_store.db"
        os.utime(online)  # the store "changed": the server drops its in-memory values and reads again
        reader = OnlineFeatureReader(server["paths"], check_seconds=0)
        (_, _, (unknown,)) = reader.records([Flight(**FLIGHT)])
        assert "plane" not in unknown
        answer = httpx.post(f"{server['url']}/predict", json=FLIGHT)
        assert answer.status_code == 200 and "plane" not in answer.json()["defaults_used"]
    finally:
        view.state = previous
        store.registry.apply_feature_view(view, store.project, commit=True)


def test_metrics_in_prometheus_format(server) -> None:
    httpx.post(f"{server['url']}/predict", json=FLIGHT)
    text = httpx.get(f"{server['url']}/metrics").text
    assert 'mlplatform_requests_total{endpoint="/predict"}' in text
    assert "mlplatform_request_seconds_bucket" in text and "mlplatform_model_version 1.0" in text


def test_served_features_are_feasts_and_follow_the_online_store(server) -> None:
    """The API's in-memory features equal Feast's own lookup, and a write to the online store
    reaches a running server without a restart."""
    import pandas as pd

    from mlplatform.features.service import REQUEST_TIMESTAMP, SERVICE_NAME
    from mlplatform.defs.flights.api import Flight, departure_utc, entity_values
    from mlplatform.serving.features import OnlineFeatureReader

    flight = Flight(**FLIGHT)
    reader = OnlineFeatureReader(server["paths"], check_seconds=0)
    (record,), _, _ = reader.records([flight])
    store = reader.store
    expected = store.get_online_features(
        features=store.get_feature_service(SERVICE_NAME), full_feature_names=True,
        entity_rows=[{**entity_values(flight), REQUEST_TIMESTAMP: pd.Timestamp(departure_utc(flight))}]).to_dict()
    assert {c: record[c] for c in expected} == {c: v[0] for c, v in expected.items()}

    stats = [c.split("__", 1)[1] for c in record if c.startswith("route_delay_stats__")]
    original = {s: record[f"route_delay_stats__{s}"] for s in stats}
    before = httpx.post(f"{server['url']}/predict", json=FLIGHT).json()["delay_probability"]

    def write_route_stats(values: dict) -> None:
        store.write_to_online_store("route_delay_stats", pd.DataFrame([{
            "route": "EWR-IAH", "event_timestamp": pd.Timestamp(f"{LAST_DAY} 05:00", tz="UTC"), **values}]))

    write_route_stats({**original, "delay_rate_7d": 1.0, "delay_rate_28d": 1.0,
                       "mean_dep_delay_7d": 240.0, "mean_dep_delay_28d": 240.0})
    try:
        assert reader.records([flight])[0][0]["route_delay_stats__delay_rate_7d"] == 1.0
        assert _wait_for(lambda: httpx.post(f"{server['url']}/predict", json=FLIGHT).json()["delay_probability"]
                         != before)
    finally:
        write_route_stats(original)
    assert _wait_for(lambda: httpx.post(f"{server['url']}/predict", json=FLIGHT).json()["delay_probability"]
                     == before)


def _wait_for(condition, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_new_champion_is_served_without_restart_or_failed_requests(server) -> None:
    from mlplatform.model.deployment import promote_challenger, rollback
    from mlplatform.model.tracking import REGISTERED_MODEL, client

    paths: StatePaths = server["paths"]
    url = server["url"]
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client() as http:
            while not stop.is_set():
                statuses.append(http.post(f"{url}/predict", json=FLIGHT).status_code)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        trained = materialize_model(server["instance"], paths, ["trained_model"], {**SPEC, "max_epochs": 1},
                                    raise_on_error=True)
        version = str(trained.asset_materializations_for_node("trained_model")[0].metadata["model_version"].value)
        client(paths).set_model_version_tag(REGISTERED_MODEL, version, "gate", "passed")
        promote_challenger(paths)
        assert _wait_for_version(url, int(version))
        rollback(paths, reason="test")
        assert _wait_for_version(url, 1)
    finally:
        stop.set()
        asker.join(timeout=30)
    assert statuses and set(statuses) == {200}


def _wait_for_version(url: str, version: int, seconds: float = 30) -> bool:
    return _wait_for(lambda: httpx.post(f"{url}/predict", json=FLIGHT).json()["model_version"] == version, seconds)


def test_batch_predictions_score_the_day_into_the_warehouse(server) -> None:
    from helpers import warehouse_table
    from mlplatform.model.tracking import CHAMPION, version_for_alias

    paths: StatePaths = server["paths"]
    champion = int(version_for_alias(paths, CHAMPION).version)
    for _ in range(2):  # re-materializing the day replaces its rows
        result = materialize_asset(server["instance"], paths, "batch_predictions", partition=LAST_DAY)
        assert result.success
    meta = {k: v.value for k, v in result.asset_materializations_for_node("batch_predictions")[0].metadata.items()}
    rows = warehouse_table(paths, "select * from predictions")
    flights = warehouse_table(paths, f"select count(*) as n from fct_flights where flight_date = date '{LAST_DAY}'")
    assert len(rows) == meta["dagster/row_count"] == flights["n"][0]
    assert rows.flight_id.is_unique and set(rows.model_version) == {champion} == {meta["model_version"]}
    assert 0 < meta["mean_delay_probability"] < 1 and 0.5 < meta["realized_roc_auc"] <= 1
    assert (paths.exports / "predictions" / f"date={LAST_DAY}" / "data.parquet").exists()


def test_predict_live_answers_with_the_live_model_and_the_streamed_features(server) -> None:
    """`/predict/live` reads the same-day features at request time: a departure streamed after the
    first answer moves the origin's row, and the next answer says so and scores with it."""
    from mlplatform.features.repo import open_store
    from mlplatform.streaming.consumer import Consumer
    from mlplatform.defs.flights.stream_events import Departure, parse
    from mlplatform.streaming.topic import SqliteTopic, topic_file

    url, paths = server["url"], server["paths"]
    first = httpx.post(f"{url}/predict/live", json=FLIGHT, timeout=10)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == "flight_delay_live" and body["model_version"] == 1
    topic = SqliteTopic(topic_file(paths))
    events = [e for e in map(parse, (e.payload for e in topic.read(None, 100_000))) if isinstance(e, Departure)]
    newest_ewr = max(e.actual_departure_utc for e in events if e.origin == "EWR")
    assert body["same_day_features_as_of"]["origin_departures"] == newest_ewr.isoformat()
    plane = max((e.actual_departure_utc for e in events if e.tail_number == FLIGHT["tail_number"]), default=None)
    assert body["same_day_features_as_of"]["plane_departures"] == (plane.isoformat() if plane else None)
    health = httpx.get(f"{url}/health", timeout=5).json()
    assert health["live_model_version"] == 1 and health["model_family"] == "blend"
    # Trained by its line's own network settings (the spec's `network:`), the day-ahead by the platform's.
    from mlplatform.model.tracking import client

    registry = client(paths)
    params = {m: registry.get_run(registry.get_model_version_by_alias(m, "champion").run_id).data.params
              for m in ("flight_delay", "flight_delay_live")}
    assert (params["flight_delay_live"]["train_patience"], params["flight_delay_live"]["train_dropout"]) == ("6", "0.1")
    assert (params["flight_delay"]["train_patience"], params["flight_delay"]["train_dropout"]) == ("3", "0.3")

    # Ten very late departures from Newark, streamed now (flights of a day after the last built
    # one: the stream runs ahead of the end-of-day files).
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    late = []
    for i in range(1, 11):
        scheduled = newest_ewr + timedelta(minutes=5 * i)
        local = scheduled.astimezone(ZoneInfo("America/New_York"))
        late.append(Departure(f"ZZ{i}-EWR-{local:%Y%m%d}-{local:%H%M}", "EWR", "IAH", None, scheduled,
                              scheduled + timedelta(minutes=240), 240, carrier="ZZ"))
    topic.publish([d.to_json() for d in late])
    consumer = Consumer(topic, open_store(paths))
    while consumer.poll().events:
        pass
    assert not topic.set_aside()
    again = httpx.post(f"{url}/predict/live", json=FLIGHT, timeout=10).json()
    assert again["same_day_features_as_of"]["origin_departures"] == late[-1].actual_departure_utc.isoformat()
    assert again["delay_probability"] != body["delay_probability"]
    # The day-ahead model reads none of this.
    assert httpx.post(f"{url}/predict", json=FLIGHT, timeout=10).json()["model_version"] == 1


@pytest.mark.fast
def test_a_view_of_two_entities_is_read_by_both_keys(tmp_path: Path, monkeypatch) -> None:
    """A use case whose features hang off a pair of entities (a store and an item): the reader asks
    Feast by both keys, and flags each entity of a pair it does not know."""
    from datetime import datetime, timezone

    import pandas as pd
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    from mlplatform.features import repo
    from mlplatform.serving import features
    from mlplatform.serving.lookup import Lookup

    (tmp_path / "feature_store.yaml").write_text(
        "project: pairs\nprovider: local\nregistry: registry.db\nentity_key_serialization_version: 3\n"
        "online_store: {type: sqlite, path: online.db}\noffline_store: {type: file}\n")
    store_entity = Entity(name="store", join_keys=["store_id"], value_type=ValueType.STRING)
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING)
    sales = FeatureView(name="store_item_sales", entities=[store_entity, item], ttl=None,
                        schema=[Field(name="units_7d", dtype=Float64)],
                        source=FileSource(path=str(tmp_path / "sales.parquet"), timestamp_field="event_timestamp"))
    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([store_entity, item, sales, FeatureService(name="pairs_v1", features=[sales])])
    at = pd.Timestamp("2020-01-02", tz="UTC")
    store.write_to_online_store("store_item_sales", pd.DataFrame(
        {"store_id": ["s1", "s1", "s2"], "item_id": ["i1", "i2", "i1"], "units_7d": [3.0, 5.0, 7.0],
         "event_timestamp": [at] * 3}))
    monkeypatch.setattr(repo, "open_store", lambda paths: FeatureStore(repo_path=str(tmp_path)))
    monkeypatch.setattr(features, "SERVICE_NAME", "pairs_v1")
    monkeypatch.setattr(features, "lookup_of", lambda: lambda r: Lookup(
        key=f"{r['store']}-{r['item']}", entities={"store_id": r["store"], "item_id": r["item"]},
        event_time=datetime(2020, 1, 3, tzinfo=timezone.utc)))
    reader = features.OnlineFeatureReader(StatePaths(tmp_path))
    asked = [{"store": "s1", "item": "i2"}, {"store": "s2", "item": "i1"}, {"store": "s9", "item": "i1"}]
    records, keys, unknown = reader.records(asked)
    assert [r["store_item_sales__units_7d"] for r in records] == [5.0, 7.0, None]
    assert keys == ["s1-i2", "s2-i1", "s9-i1"] and unknown == [[], [], ["store", "item"]]
