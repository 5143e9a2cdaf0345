"""Recovery after a crash: runs whose process is gone are failed, with a reason, not left STARTED.

A run killed with `kill -9` (or by the out-of-memory killer, or a power cut) never writes its end:
Dagster keeps it STARTED, its pool slots claimed and its MLflow run RUNNING, and every planner
that waits for runs in progress waits forever. Here a run's process is found from the run itself
(the `mlplatform/pid` tag of a headless run, else the process that wrote its RUN_START event) and
checked: gone, a zombie, or a newer process reusing its pid means dead. Two paths use this:

- the daemon's run monitoring, through `LocalRunLauncher.check_run_worker_health`
  (`run_launcher.py`), then the run-failure sensor ends the MLflow run and records the failure;
- `mlplatform pipeline`, which has no daemon, calls `fail_dead_runs` before planning anything.

A run the sensors requested waits QUEUED until the daemon launches it; when `dagster dev` (and its
daemon) stopped first, nothing ever will, and a headless pipeline would wait on it for good:
`cancel_queued_runs_without_a_daemon` cancels those, saying why, and the pipeline does their work.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from mlplatform.automation.progress import UNFINISHED_STATUSES

PID_TAG = "mlplatform/pid"
HOST_TAG = "mlplatform/host"
ORPHANED_TAG = "mlplatform/orphaned"
# Runs that may be waiting on a process: the unfinished ones but QUEUED (no process yet);
# NOT_STARTED only for headless runs (which name theirs).
WATCHED = [dg.DagsterRunStatus(s) for s in UNFINISHED_STATUSES if s != "QUEUED"]
# The daemon that launches queued runs writes a heartbeat every 30 s (Dagster's private
# `dagster._daemon.controller.DEFAULT_HEARTBEAT_INTERVAL_SECONDS`; tests/test_recovery.py holds the
# two equal): four missed, and it is gone.
QUEUE_DAEMON, HEARTBEAT_INTERVAL_S, DAEMON_GONE_AFTER_S = "QUEUED_RUN_COORDINATOR", 30, 120


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes itself (`execute_in_process`)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@dataclass(frozen=True)
class Liveness:
    alive: bool | None  # None: cannot tell (another host, no process recorded yet)
    detail: str


def _run_worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    if PID_TAG in run.tags:
        return int(run.tags[PID_TAG])
    # The run worker writes RUN_START; before it (STARTING), only the launcher's events exist, and
    # Dagster's own `start_timeout_seconds` judges those runs.
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None and event.pid else None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether `pid` runs, is no zombie, and (given `started_by`) existed by then: a pid reused by a
    newer process is not the run's."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_by is None or process.create_time() <= started_by + 1.0
    except psutil.NoSuchProcess:
        return False


def liveness(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Liveness:
    host = run.tags.get(HOST_TAG)
    if host and host != socket.gethostname():
        return Liveness(None, f"its process runs on {host}")
    pid = _run_worker_pid(instance, run)
    if pid is None:
        return Liveness(None, "no process recorded yet")
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record and record.start_time else (
        record.create_timestamp.timestamp() if record else None)
    if process_alive(pid, started):
        return Liveness(True, f"process {pid} is running")
    return Liveness(False, f"its process {pid} is gone (killed, or out of memory)")


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, str]]:
    """Runs in progress whose process is gone, with what was found."""
    found = []
    for run in instance.get_runs(dg.RunsFilter(statuses=WATCHED)):
        if run.status == dg.DagsterRunStatus.NOT_STARTED and PID_TAG not in run.tags:
            continue  # a queued run the daemon is about to launch: not ours to judge
        state = liveness(instance, run)
        if state.alive is False:
            found.append((run, state.detail))
    return found


def release_run(instance: dg.DagsterInstance, run_id: str) -> None:
    """Free the pool slots a run holds or waits for (so the next run's steps are not blocked)."""
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def fail_dead_runs(instance: dg.DagsterInstance, on_failed: Callable[[dg.DagsterRun, str], None] | None = None
                   ) -> list[tuple[dg.DagsterRun, str]]:
    """Mark every run whose process is gone as failed, with the reason, and free its pool slots."""
    failed = []
    for run, detail in dead_runs(instance):
        message = (f"run {run.run_id[:8]} ({run.job_name}) was {run.status.value} but {detail}: marked "
                   "failed by mlplatform; its work is redone by the next tick or `mlplatform pipeline`")
        instance.add_run_tags(run.run_id, {ORPHANED_TAG: "true"})
        instance.report_run_failed(instance.get_run_by_id(run.run_id), message=message)
        release_run(instance, run.run_id)
        failed.append((run, message))
        if on_failed:
            on_failed(run, message)
    return failed


def queue_daemon_gone(instance: dg.DagsterInstance, home: Path, now: float) -> str | None:
    """Why no daemon will launch queued runs (none ever ran; `mlplatform dev`, whose daemon wrote the
    last heartbeat, stopped since; or its heartbeat is `DAEMON_GONE_AFTER_S` old), or None while one may."""
    from mlplatform.dev import DEV_LOCK, DEV_STOPPED
    from mlplatform.locks import held

    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    if beat is None:
        return "no daemon has run on this instance"
    try:
        stopped = float((home / DEV_STOPPED).read_text())
    except (OSError, ValueError):
        stopped = None
    # The daemon gets the stop signal with `mlplatform dev` and may write one more heartbeat while it
    # shuts down, after dev marked the stop: within one heartbeat interval, that beat is its own,
    # unless a `mlplatform dev` holds the state directory again (its daemon wrote it).
    if stopped is not None and beat.timestamp <= stopped + HEARTBEAT_INTERVAL_S and not held(home / DEV_LOCK):
        return f"`mlplatform dev`, whose daemon launched runs, stopped {now - stopped:.0f} s ago"
    if now - beat.timestamp >= DAEMON_GONE_AFTER_S:
        return f"the daemon was last seen {now - beat.timestamp:.0f} s ago"
    return None


def cancel_queued_runs_without_a_daemon(instance: dg.DagsterInstance, home: Path, now: float | None = None
                                        ) -> list[tuple[dg.DagsterRun, str]]:
    """Cancel the QUEUED runs that no daemon will launch, each with the reason; a live daemon's queue
    is left alone."""
    queued = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    if not queued:
        return []
    gone = queue_daemon_gone(instance, home, now or time.time())
    if gone is None:
        return []
    canceled = []
    for run in queued:
        message = (f"run {run.run_id[:8]} ({run.job_name}) was QUEUED and {gone}, so nothing would launch it: "
                   "canceled by mlplatform, which does its work now")
        instance.report_run_canceled(run, message=message)
        release_run(instance, run.run_id)
        canceled.append((run, message))
    return canceled
