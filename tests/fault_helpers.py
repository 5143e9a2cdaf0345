"""Helpers of the fault tests: the platform's commands in their own processes, and the check that
every reader agrees after a fault and a plain rerun."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mlplatform.state import StatePaths

BIN = Path(sys.executable).parent
SETTINGS = {  # a small model; the first champion after 7 days; a long cooldown after a retrain
    "MLPLATFORM_MODEL_HOLDOUT_DAYS": "2", "MLPLATFORM_MODEL_VALIDATION_DAYS": "2", "MLPLATFORM_MODEL_MIN_TRAIN_DAYS": "3",
    "MLPLATFORM_MODEL_MAX_EPOCHS": "2", "MLPLATFORM_MODEL_MIN_FIRST_AUC": "0", "MLPLATFORM_MODEL_GATE_AGAINST_BASELINES": "false", "MLPLATFORM_MODEL_MIN_TRAIN_ROWS": "100",
    "MLPLATFORM_RETRAIN_LIVE_MODEL": "false",
    "MLPLATFORM_MODEL_GATE_TOLERANCE": "1", "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_ROWS": "500",
    "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "30", "MLPLATFORM_TRAINING_DEVICE": "cpu", "MLPLATFORM_SENSORS": "stopped",
}


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **SETTINGS, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    env.pop("MLPLATFORM_PAUSE_AT", None)
    return {**env, **extra}


def mlplatform(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlplatform"), *args], env=env_for(home, **extra), capture_output=True,
                          text=True, timeout=600)


def start(home: Path, *args: str, **extra: str) -> subprocess.Popen:
    """A command in a process group of its own (so `kill -9` of the group takes its children too)."""
    log = home.parent / f"{home.name}-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "mlplatform"), *args], env=env_for(home, **extra), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log  # type: ignore[attr-defined]
    return process


def stop_group(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the process group a test started (`start_new_session`), as Ctrl-C would stop it;
    SIGKILL of the group if it is not gone within `timeout` (a busy machine stops it slowly)."""
    import signal

    # The group, not only its leader: a leader that has exited may leave children running in it.
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, signal_number: int) -> None:
    try:
        os.killpg(pgid, signal_number)
    except ProcessLookupError:  # every process of the group is gone already
        pass


def kill_at(home: Path, point: str, *args: str, **extra: str) -> None:
    """Start `mlplatform pipeline`, wait for it to reach `point`, and `kill -9` its process group."""
    from mlplatform.faults import kill_at_point

    kill_at_point([str(BIN / "mlplatform"), "pipeline", *args], env_for(home, **extra), home, point,
                  log=home.parent / f"{home.name}-{point}.log", timeout_s=400)


def landed_flights(home: Path) -> int:
    """The real number of flights in the landed days: the data rows of the files as delivered."""
    from mlplatform.ingest.landing import data_rows

    return sum(data_rows(p.read_bytes()) for p in (home / "landing" / "flights").glob("*.csv"))


def assert_consistent(home: Path) -> dict:
    """Every reader agrees, and nothing a crash left behind is still in progress. Returns the status."""
    from mlplatform.automation.deployments import dagster_champion
    from mlplatform.model.deployment import history, served_champion
    from mlplatform.model.tracking import CHAMPION, EXPERIMENT, client, version_for_alias
    from mlplatform.status import collect_status

    paths = StatePaths.resolve(home)
    flights = pq.read_table(paths.exports / "fct_flights", columns=["flight_id"]).column("flight_id").to_pylist()
    assert len(flights) == landed_flights(home)
    assert len(set(flights)) == len(flights), "a flight is stored twice"

    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        in_progress = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                                                              dg.DagsterRunStatus.NOT_STARTED]))
        assert not in_progress, f"runs left in progress: {[(r.job_name, r.status) for r in in_progress]}"
        claimed = instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert not claimed, f"pool slots still held: {claimed}"
        in_dagster = dagster_champion(instance)

    tracker = client(paths)
    experiment = tracker.get_experiment_by_name(EXPERIMENT)
    running = tracker.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") if experiment else []
    assert not running, "an MLflow run was left RUNNING"

    status = collect_status(paths)  # what `mlplatform status --json` prints
    held = version_for_alias(paths, CHAMPION)
    if held is not None:
        registry = int(held.version)
        assert served_champion(paths)["version"] == registry  # the API and the retrain decision read this
        assert status["models"]["aliases"]["champion"]["version"] == registry
        assert history(paths)[-1]["version"] == registry
        assert in_dagster == registry
    assert status["automation"]["stuck_runs"] == []
    return status


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {done.stderr.decode().strip()}")


