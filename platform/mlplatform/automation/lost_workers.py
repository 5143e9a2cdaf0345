"""Steps whose Celery worker died while running them fail, naming the worker, instead of hanging.

A worker killed mid-step (`kill -9`, out of memory, its machine lost) takes its step with it: the
step's message was acknowledged when it started, so no other worker gets it, and its result stays
STARTED forever. dagster-celery's executor waits on that result without a limit, so the run would
hang. The watch here finds such steps and stores a failure as their result: the executor then fails
the run with that reason, and a plain rerun redoes its work.

The workers report each step they start (`task_track_started`, with their name) and take a step
only when they have a free slot (`worker_disable_prefetch`), so no step waits unseen on a dead
worker. A worker is judged lost once it has not answered `LOST_AFTER_S` of pings: a busy worker
still answers, since the step runs in a pool process beside the one that answers. The started steps
are read from the result backend only when a worker heard before has gone silent, or every
`DISCOVER_EVERY` rounds (to learn of workers that died before the watch heard them): not every round.

Every `mlplatform worker` runs the watch for its peers, so runs started by the sensors are covered;
`mlplatform pipeline` runs it too while its runs execute, so a run is not left waiting when every
worker is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PING_EVERY_S = 5.0
# Long enough for a worker on a saturated machine to answer a ping late; short beside a step.
LOST_AFTER_S = 20.0
DISCOVER_EVERY = 12


class WorkerLost(Exception):
    """The worker running a step stopped answering: killed, out of memory, or its machine lost."""


class LostWorkerWatch:
    """Remembers when each worker last answered, and fails the steps of the ones that stopped."""

    def __init__(self, app, lost_after_s: float = LOST_AFTER_S) -> None:
        self.app, self.lost_after_s = app, lost_after_s
        self.last_answer: dict[str, float] = {}
        self.rounds = 0

    def started_steps(self) -> Iterator[tuple[str, str]]:
        """(task id, worker) of every step a worker has started and not finished."""
        backend = self.app.backend
        prefix = backend.task_keyprefix.decode() if isinstance(backend.task_keyprefix, bytes) else backend.task_keyprefix
        for key in backend.client.scan_iter(match=prefix + "*", count=1000):
            task_id = (key.decode() if isinstance(key, bytes) else key)[len(prefix):]
            meta = backend.get_task_meta(task_id, cache=False)
            if meta.get("status") == "STARTED" and isinstance(meta.get("result"), dict):
                yield task_id, meta["result"].get("hostname", "")

    def check(self, now: float | None = None) -> list[str]:
        """Ping the workers once; fail the started steps of each worker silent for too long (or
        never heard since the watch began that long ago). Returns the task ids failed now."""
        now = time.monotonic() if now is None else now
        for answer in self.app.control.ping(timeout=1.0) or []:
            for hostname in answer:
                self.last_answer[hostname] = now
        self.rounds += 1
        silent = any(now - heard >= self.lost_after_s for heard in self.last_answer.values())
        if not silent and self.rounds % DISCOVER_EVERY != 1:
            return []
        failed, running = [], set()
        for task_id, hostname in list(self.started_steps()):
            running.add(hostname)
            heard = self.last_answer.setdefault(hostname, now)
            silent = now - heard
            if hostname and silent >= self.lost_after_s:
                self.app.backend.mark_as_failure(task_id, WorkerLost(
                    f"Celery worker {hostname} stopped answering while it ran this step (silent for "
                    f"{silent:.0f} s: killed, out of memory, or its machine lost); the run fails, and a "
                    "rerun redoes the step on a worker that answers"))
                failed.append(task_id)
        for hostname in [h for h, heard in self.last_answer.items() if now - heard >= self.lost_after_s]:
            if hostname not in running:  # gone with no step left to fail (stopped, or failed above)
                del self.last_answer[hostname]
        return failed


@contextmanager
def watching(app, every_s: float = PING_EVERY_S, log=None) -> Iterator[LostWorkerWatch]:
    """Run the watch in a thread while the block runs (a broker that does not answer is left to
    the run's own error: the watch tries again on its next round)."""
    watch = LostWorkerWatch(app)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                for task_id in watch.check():
                    if log is not None:
                        log(f"failed step {task_id}: its worker stopped answering")
            except Exception:  # noqa: BLE001 - the watch must never take its process down
                continue

    thread = threading.Thread(target=loop, name="lost-worker-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(timeout=every_s + 2)
