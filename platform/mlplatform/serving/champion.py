"""The champion model, loaded once and swapped in place when the `champion` alias moves.

A background thread polls the registry (one small SQLite query); a new champion is loaded beside
the old one and replaces it in a single reference assignment, so a request in progress finishes with
the model it started with and none ever fails for a reload.

The registry going away (PostgreSQL stopped, on the production profile) costs the API nothing but
news of a new champion: the model in memory keeps answering, the poll says once which setting's
server does not answer (`registry_error`, shown by `/health`), and once when it answers again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlplatform.ml.bundle import TrainedModel
from mlplatform.state import StatePaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: int
    trained: TrainedModel

    @property
    def family(self) -> str:
        return self.trained.family

    def predict(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The model's outputs for rows given as training-set-shaped dicts."""
        return self.trained.score_records(records)


class ChampionHolder:
    """The version of `model` that a registry alias names (`champion`; `shadow` for a challenger in
    shadow, which, unlike the champion, can also go away)."""

    def __init__(self, paths: StatePaths, poll_seconds: float = 2.0, model: str | None = None,
                 alias: str | None = None):
        from mlplatform.model.tracking import CHAMPION, REGISTERED_MODEL

        self.paths = paths
        self.model = model or REGISTERED_MODEL
        self.alias = alias or CHAMPION
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.registry_error: str | None = None  # why the last poll could not read the registry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the champion if the alias points elsewhere than what is served; True if it changed."""
        import mlflow

        from mlplatform.model.tracking import CHAMPION, version_for_alias

        held = version_for_alias(self.paths, self.alias, self.model)
        if held is None and self.alias != CHAMPION and self.current is not None:
            log.info("%s %s version %s no longer held", self.model, self.alias, self.current.version)
            self.current = None  # the shadow run ended; a champion is never taken away
            return True
        if held is None or (self.current is not None and self.current.version == int(held.version)):
            return False
        loaded = mlflow.pyfunc.load_model(f"models:/{self.model}/{held.version}").unwrap_python_model()
        model = LoadedModel(int(held.version), loaded.trained)
        model.predict([{}])  # a row with every feature missing: builds what the first request would
        self.current = model
        log.info("serving %s %s version %s", self.model, self.alias, held.version)
        return True

    def start(self) -> None:
        # MLflow logs a database error with its traceback before raising it; the poll says what
        # was lost itself, once (`_cannot_read`).
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        self._thread = threading.Thread(target=self._poll, name="champion-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as err:  # a broken registry read must not kill the reloader
                self._cannot_read(err)
            else:
                if self.registry_error is not None:
                    log.warning("the registry answers again: %s %s is checked every %g s",
                                self.model, self.alias, self.poll_seconds)
                    self.registry_error = None

    def _cannot_read(self, err: Exception) -> None:
        """Say once per outage why the alias cannot be read, naming the lost server's setting; a
        traceback only for an error that is not a lost server."""
        from mlplatform.profile import lost_service

        setting = lost_service(err)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        cause = (f"the server of {setting} does not answer ({type(err).__name__})" if setting
                 else f"{type(err).__name__}: {first_line}")
        if cause == self.registry_error:
            return
        self.registry_error = cause
        serving = f"still serving version {self.current.version}" if self.current else "nothing to serve yet"
        log.warning("cannot check %s %s: %s; %s, checking again every %g s", self.model, self.alias, cause,
                    serving, self.poll_seconds, exc_info=setting is None)
