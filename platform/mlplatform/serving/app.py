"""The prediction API: `/predict`, `/predict/batch`, `/predict/live`, `/health`, `/metrics` (Prometheus text).

A request is the use case's (its hooks' `Request`; `schemas.py`), an answer carries its prediction key
and its output under the use case's names. `/predict/live`, where the use case has a live model (a
model line with the same-day features), answers with it: the day-ahead features plus the same-day
features the stream keeps online, read at request time (`same_day.py`).

Everything heavy happens once at start-up (the Feast store, the champion model); a request reads
its online features from memory (see `features.py`), preprocesses them without pandas and runs the
network. The endpoints are `async` on purpose: the work is well under a millisecond of CPU, less
than a hop to the thread pool would cost. Bad input never reaches the model: FastAPI answers 422
naming the field (a date outside 1900-2199 too), a body over 512 KiB gets 413 before it is
parsed, and no request error becomes a 500; `/metrics` counts every error answer by status. With an API token configured, every endpoint but
`/health` answers 401 without it (`auth.py`).
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mlplatform.serving.champion import ChampionHolder
from mlplatform.serving.features import OnlineFeatureReader
from mlplatform.serving.guard import RequestGuard
from mlplatform.serving.prediction_log import FOLDER as LOG_FOLDER, PredictionLog
from mlplatform.serving.schemas import schemas as use_case_schemas
from mlplatform.state import StatePaths
from mlplatform.usecases import active


# A full batch (1,000 requests) is about 200 KB of JSON.
MAX_BODY_BYTES = 512 * 1024
# What `mlplatform serve --workers N` hands each worker process (JSON): they build the app themselves.
WORKER_SETTINGS_ENV = "MLPLATFORM_SERVE_SETTINGS"


def describe(health: dict) -> str:
    """What is served, from `/health`'s answer: for the line `serve` prints once it is ready."""
    champion = (f"champion v{health['model_version']} ({health['model_family']})" if health["model_version"]
                else "no champion yet (503 until the pipeline deploys one)")
    live = f", live champion v{health['live_model_version']}" if health["live_model_version"] else ""
    return champion + live


def app_from_environment() -> FastAPI:
    """The app of one worker process of `serve --workers N`, from the settings its parent left in
    the environment; the token is read as `serve` reads it (`auth.py`)."""
    import json
    import os

    from mlplatform.serving.auth import api_token

    settings = json.loads(os.environ[WORKER_SETTINGS_ENV])

    def ready(health: dict) -> None:
        print(f"mlplatform serve: {describe(health)} {settings['banner']} (worker {os.getpid()})", flush=True)

    return create_app(StatePaths.resolve(settings["home"]), reload_seconds=settings["reload_seconds"],
                      log_predictions=settings["log_predictions"], on_ready=ready, api_token=api_token())


logger = logging.getLogger(__name__)
# A lost online store fails every request: say so at most this often, not once per request.
LOST_STORE_WARNING_SECONDS = 30.0
_warned_at: dict[str, float] = {}


def unavailable(err: Exception) -> Exception:
    """A request's error as the client should see it: a server of the production profile that does
    not answer (the online store's Redis) is a 503 naming its setting, with Retry-After; any other
    error stays what it is."""
    from mlplatform.profile import lost_service

    setting = None if isinstance(err, HTTPException) else lost_service(err)
    if setting is None:
        return err
    now = time.monotonic()
    if now - _warned_at.get(setting, float("-inf")) >= LOST_STORE_WARNING_SECONDS:
        _warned_at[setting] = now
        logger.warning("answering 503: the server of %s does not answer (%s); requests succeed again once it is "
                    "back, nothing to restart", setting, type(err).__name__)
    return HTTPException(503, f"the server of {setting} does not answer: retry once it is back",
                         headers={"Retry-After": "5"})


def create_app(paths: StatePaths, reload_seconds: float = 2.0, max_body_bytes: int = MAX_BODY_BYTES,
               log_predictions: bool = True, on_ready: Callable[[dict], None] | None = None,
               api_token: str | None = None) -> FastAPI:
    """The API on the state directory `paths`. `log_predictions`: every answer goes to the prediction
    log (`prediction_log.py`). `on_ready` is called with `/health`'s answer once the models are loaded.
    `api_token`: every endpoint but `/health` requires it as a bearer token (`auth.py`)."""
    registry = CollectorRegistry()
    requests = Counter("mlplatform_requests_total", "Prediction requests", ["endpoint"], registry=registry)
    errors = Counter("mlplatform_request_errors_total", "Requests answered with an error, by status",
                     ["endpoint", "status"], registry=registry)
    latency = Histogram("mlplatform_request_seconds", "Request latency", ["endpoint"], registry=registry,
                        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
    model_version = Gauge("mlplatform_model_version", "Version of the champion being served", registry=registry)
    champion = ChampionHolder(paths, poll_seconds=reload_seconds)
    from mlplatform.model.tracking import LIVE_MODEL, SHADOW

    shapes = use_case_schemas()
    live_champion = (ChampionHolder(paths, poll_seconds=reload_seconds, model=LIVE_MODEL)
                     if LIVE_MODEL is not None else None)
    # A challenger in shadow scores the logged answers in the log's thread (model/shadow.py); watched
    # only where shadow runs are on, so that the default pays no third registry poll.
    from mlplatform.resources import ModelSpec, settings_from_env

    spec = settings_from_env(ModelSpec, "MLPLATFORM_MODEL")
    shadow = (ChampionHolder(paths, poll_seconds=reload_seconds, alias=SHADOW)
              if log_predictions and spec.shadow_days > 0 else None)
    log = (PredictionLog(paths.own / LOG_FOLDER, shadow=(lambda: shadow.current) if shadow else None)
           if log_predictions else None)
    holders = [h for h in (champion, live_champion, shadow) if h is not None]
    lead = spec.same_day_lead_minutes

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import torch

        # One request at a time gains nothing from intra-op threads; the event loop wants the core.
        torch.set_num_threads(1)
        from mlplatform.serving.same_day import SameDayReader

        app.state.features = OnlineFeatureReader(paths)
        if live_champion is not None:
            app.state.same_day = SameDayReader(app.state.features.store, lead_minutes=lead)
        for holder in holders:
            holder.refresh()
            holder.start()
        if log is not None:
            log.start()
        # What start-up loaded (the libraries, Feast's registry, the models) lives as long as the
        # process: moved out of the collector's generations, a full collection no longer walks its
        # millions of objects in the middle of a request (the latency's tail).
        gc.collect()
        gc.freeze()
        if on_ready is not None:
            on_ready(await health())
        yield
        for holder in holders:
            holder.stop()
        if log is not None:
            log.close()  # what gathered since the last write

    app = FastAPI(title=f"mlplatform: {active().title or active().name}", lifespan=lifespan)

    def prediction(key: str, value: float, schema=None, **rest):
        return (schema or shapes.prediction)(**{shapes.key: key, shapes.output: value, **rest})

    def predict(endpoint: str, asked: list, started: float) -> list:
        model = champion.current
        if model is None:
            raise HTTPException(503, "no champion model is deployed yet: run the pipeline first")
        model_version.set(model.version)
        records, ids, unknown, as_of, late = app.state.features.records_as_of(asked)
        probabilities = model.predict(records)
        request_id = uuid.uuid4().hex
        if log is not None:
            spent = time.perf_counter() - started
            for one, record, i, p, moments, after in zip(asked, records, ids, probabilities, as_of, late):
                # Dumped here: dumping in the log's thread lengthened the tail (p99) more.
                log.append(request_id, endpoint, champion.model, model.version, i, float(p), spent,
                           one.model_dump(mode="json"), record, moments, after)
        return [prediction(i, float(p), model_version=model.version, defaults_used=u, request_id=request_id,
                           features_after_event=after)
                for i, p, u, after in zip(ids, probabilities, unknown, late)]

    def timed(endpoint: str, asked: list) -> list:
        requests.labels(endpoint).inc()
        started = time.perf_counter()
        try:
            return predict(endpoint, asked, started)
        except Exception as err:
            raise unavailable(err) from None
        finally:  # errors are counted by status in `RequestGuard`
            latency.labels(endpoint).observe(time.perf_counter() - started)

    # The endpoints take the use case's request model: its class is given to FastAPI by annotation.
    async def predict_one(one):
        return timed("/predict", [one])[0]

    async def predict_batch(request):
        return shapes.batch_prediction(predictions=timed("/predict/batch", getattr(request, shapes.batch_field)))

    async def predict_live(one):
        requests.labels("/predict/live").inc()
        started = time.perf_counter()
        try:
            model = live_champion.current
            if model is None:
                raise HTTPException(503, "no live model is deployed yet: it is trained with each retrain "
                                         "(retrain_policy.live_model)")
            records, ids, unknown, day_ahead_as_of, late = app.state.features.records_as_of([one])
            same_day, as_of = app.state.same_day.read([one])
            record = {**records[0], **same_day[0]}
            probability = float(model.predict([record])[0])
            request_id = uuid.uuid4().hex
            if log is not None:
                log.append(request_id, "/predict/live", live_champion.model, model.version, ids[0], probability,
                           time.perf_counter() - started, one.model_dump(mode="json"), record,
                           {**day_ahead_as_of[0], **as_of[0]}, late[0])
            return prediction(ids[0], probability, shapes.live_prediction, model_version=model.version,
                              defaults_used=unknown[0], model=live_champion.model,
                              same_day_features_as_of=as_of[0], request_id=request_id,
                              features_after_event=late[0])
        except Exception as err:
            raise unavailable(err) from None
        finally:
            latency.labels("/predict/live").observe(time.perf_counter() - started)

    predict_one.__annotations__ = {"one": shapes.request}
    predict_batch.__annotations__ = {"request": shapes.batch_request}
    predict_live.__annotations__ = {"one": shapes.request}
    app.post("/predict", response_model=shapes.prediction)(predict_one)
    app.post("/predict/batch", response_model=shapes.batch_prediction)(predict_batch)
    if live_champion is not None:
        app.post("/predict/live", response_model=shapes.live_prediction)(predict_live)

    @app.get("/health")
    async def health() -> dict:
        model = champion.current
        live = live_champion.current if live_champion is not None else None
        return {"status": "ok" if model else "no model", "model_version": model.version if model else None,
                "model_family": model.family if model else None,
                "live_model_version": live.version if live else None,
                "shadow_model_version": shadow.current.version if shadow is not None and shadow.current else None,
                "prediction_log": log.status() if log is not None else "off",
                "registry": next((h.registry_error for h in holders if h.registry_error), "ok")}

    @app.get("/metrics")
    async def metrics() -> Response:
        if champion.current:
            model_version.set(champion.current.version)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.champion = champion
    app.state.live_champion = live_champion
    app.state.prediction_log = log
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes, errors=errors, token=api_token)
    return app
