"""The prediction log: every answer of the API, with what it was computed from, as Parquet the
warehouse reads.

One row per prediction: the request's id (also in the answer), when, which endpoint, the request
as asked, its prediction key, the registered model and version that answered, the prediction, the
feature values the model read and, per feature view, the event time of the online row they came
from, and the request's latency so far. A request encodes its rows' JSON and appends them to a list in
memory (no I/O on the request's path); a thread writes what gathered every `flush_seconds` (or at
`flush_rows`) as one Parquet file, atomically, under

    $MLPLATFORM_HOME/prediction_log/date=<UTC day>/part-<time>-<pid>-<n>.parquet

so a crash loses at most the last few seconds of log and never leaves half a file. A write that
fails (a full or read-only disk) loses nothing either: the rows are held and written with the next
batch once the disk takes them again, up to `max_held_rows` (then the oldest are dropped and
counted); `/health` shows what is held and why (`status()`). A challenger in shadow
(model/shadow.py) scores each logged day-ahead answer here, as rows of their own. DuckDB reads the
whole log with `read_parquet('<home>/prediction_log/*/*.parquet', hive_partitioning = true, union_by_name = true)`
(docs/operating.md, "Tracing an answer"); `live_performance` joins it to the day's outcomes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from itertools import count
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlplatform.model.tracking import REGISTERED_MODEL
from mlplatform.usecases import active

FOLDER = "prediction_log"
SHADOW_SUFFIX = " (shadow)"
MAX_HELD_ROWS = 200_000  # about 200 MB of rows kept while the log cannot be written
log = logging.getLogger(__name__)
SCHEMA = pa.schema([
    ("request_id", pa.string()), ("logged_at", pa.timestamp("us", tz="UTC")), ("endpoint", pa.string()),
    # The prediction's key and its output, under the use case's names.
    ("model", pa.string()), ("model_version", pa.int64()), (active().prediction.key, pa.string()),
    (active().prediction.output, pa.float64()), ("latency_ms", pa.float64()), ("request", pa.string()),
    ("features", pa.string()), ("features_as_of", pa.string()),
    # The views whose online values were from after the prediction's event (comma-separated; null:
    # none). Files written before this column read it as null.
    ("features_after_event", pa.string()),
])


def _json(value: dict) -> str:
    """A dict as JSON, a missing value (NaN) as null: JSON has no NaN, and DuckDB's JSON reader refuses one."""
    return json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in value.items()}, default=str)


class PredictionLog:
    def __init__(self, folder: Path, flush_seconds: float = 2.0, flush_rows: int = 20_000,
                 max_held_rows: int = MAX_HELD_ROWS, shadow: Callable[[], Any] | None = None):
        self.folder = folder
        # The challenger in shadow, if any (model/shadow.py): it scores the logged day-ahead answers
        # here, in the writing thread, so that it costs the requests nothing.
        self.shadow = shadow
        self.flush_seconds, self.flush_rows, self.max_held_rows = flush_seconds, flush_rows, max_held_rows
        self._rows: list[tuple] = []
        # Rows a failed write could not store: only the writer (under `_lock`) touches them, so that
        # requests keep appending to `_rows` without a lock.
        self._held: list[tuple] = []
        # How many rows the writer holds (a write in progress, or held after a failure): one number
        # that `status()` reads, so that a write in progress does not hide its rows from /health.
        self._unwritten = 0
        self.dropped_rows = 0
        self.last_error: str | None = None
        self._files = count()
        self._lock = threading.Lock()  # one writer at a time (the thread, or close)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, request_id: str, endpoint: str, model: str, model_version: int, key: str,
               value: float, latency_s: float, request: dict, features: dict, features_as_of: dict,
               after_event: list[str] | None = None) -> None:
        """Called on the request's path: the row's JSON, and a tuple onto a list (atomic under the GIL).

        Encoded here, tens of microseconds a row, rather than in the
        writing thread: encoding a whole batch there held the GIL in bursts that every request during
        a flush waited on, which lengthened the tail (p99) more than this lengthens the median
        (docs/benchmarks.md)."""
        self._rows.append((request_id, time.time(), endpoint, model, model_version, key, value,
                           latency_s * 1000, _json(request), _json(features), _json(features_as_of),
                           ",".join(after_event) if after_event else None,
                           features if self.shadow is not None else None))
        if len(self._rows) >= self.flush_rows:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The thread outlives any failure: a dead writer would let rows pile up unseen.
        while not self._stopped.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._try_flush()

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._try_flush() is False:
            log.error(f"prediction log: {len(self._held)} answer(s) not written at shutdown: {self.last_error}")

    def _try_flush(self) -> bool:
        """`flush`, its failure logged (once per outage) instead of raised; whether it wrote."""
        failing = self.last_error is not None
        try:
            self.flush()
        except Exception as err:  # OSError from a full or read-only disk, mostly
            self.last_error = f"{type(err).__name__}: {err}"
            if not failing:
                log.warning(f"prediction log: cannot write under {self.folder} ({self.last_error}); holding "
                            f"the answers in memory (up to {self.max_held_rows}) and retrying every "
                            f"{self.flush_seconds:g} s")
            return False
        if failing:
            log.warning(f"prediction log: written again under {self.folder} after: {self.last_error}"
                        + (f"; {self.dropped_rows} answer(s) dropped meanwhile" if self.dropped_rows else ""))
            self.last_error = None
        return True

    def status(self) -> dict:
        """For `/health`: answers waiting to be written, dropped, and why the last write failed."""
        return {"waiting_rows": len(self._rows) + self._unwritten, "dropped_rows": self.dropped_rows,
                "last_error": self.last_error}

    def flush(self) -> Path | None:
        """Write what gathered (and what an earlier failure held) as one Parquet file; the path, or
        None when there was nothing. On a failure the rows are held for the next call, and it raises."""
        with self._lock:
            taken, self._rows = self._rows, []
            rows, self._held = self._held + taken, []
            self._unwritten = len(rows)
            if not rows:
                return None
            try:
                path = self._write(rows)
            except BaseException:
                excess = len(rows) - self.max_held_rows
                if excess > 0:  # the oldest go first: the newest answers are the likelier to be traced
                    rows = rows[excess:]
                self._held = rows
                self._unwritten, self.dropped_rows = len(rows), self.dropped_rows + max(excess, 0)
                raise
            self._unwritten = 0
            return path

    def _with_shadow(self, rows: list[tuple]) -> list[tuple]:
        """The rows, and for each day-ahead answer the shadow's score of the same features: a row of
        its own, its endpoint suffixed ` (shadow)`, no latency (it was never on the request's path)."""
        held = self.shadow() if self.shadow is not None else None
        if held is None:
            return rows
        answered = [r for r in rows if r[3] == REGISTERED_MODEL and not r[2].endswith(SHADOW_SUFFIX)]
        if not answered:
            return rows
        try:
            scores = held.predict([r[12] for r in answered])
        except Exception as err:  # the shadow must never cost the log its rows
            log.warning(f"prediction log: the shadow version {held.version} could not score: {err}")
            return rows
        return rows + [(r[0], r[1], r[2] + SHADOW_SUFFIX, r[3], held.version, r[5], float(p), float("nan"), *r[8:])
                       for r, p in zip(answered, scores)]

    def _write(self, rows: list[tuple]) -> Path:
        rows = self._with_shadow(rows)
        columns = list(zip(*rows))
        table = pa.table([
            pa.array(columns[0], pa.string()),
            pa.array([datetime.fromtimestamp(t, timezone.utc) for t in columns[1]], pa.timestamp("us", tz="UTC")),
            pa.array(columns[2], pa.string()), pa.array(columns[3], pa.string()),
            pa.array(columns[4], pa.int64()), pa.array(columns[5], pa.string()),
            pa.array([float(p) for p in columns[6]], pa.float64()), pa.array(columns[7], pa.float64()),
            pa.array(columns[8], pa.string()), pa.array(columns[9], pa.string()), pa.array(columns[10], pa.string()),
            pa.array(columns[11], pa.string()),
        ], schema=SCHEMA)
        first = datetime.fromtimestamp(columns[1][0], timezone.utc)
        path = (self.folder / f"date={first:%Y-%m-%d}" /
                f"part-{first:%H%M%S%f}-{os.getpid()}-{next(self._files)}.parquet")
        _write_atomically(path, table)
        return path


def _write_atomically(path: Path, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    from mlplatform.ingest.files import write_atomically

    write_atomically(path, lambda tmp: pq.write_table(table, tmp))


def read_log(folder: Path, keys: set[str] | None = None):
    """The logged answers (a pandas DataFrame), those of the prediction `keys` only when given."""
    import pandas as pd
    import pyarrow.parquet as pq

    files = sorted(folder.glob("date=*/part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=SCHEMA.names)
    frame = pa.concat_tables([pq.read_table(f, schema=SCHEMA) for f in files]).to_pandas()
    return frame[frame[active().prediction.key].isin(keys)] if keys is not None else frame
