"""Faults caused for real, each followed by a plain rerun that must complete the work.

`mlplatform pipeline` runs as a process group of its own; a crash point (`MLPLATFORM_PAUSE_AT`)
holds it at an exact moment (dbt running, the online store half written, training, the champion
alias moved but not yet logged) and the test kills the whole group with `kill -9`. After each
rerun every reader must agree: the flights stored once each, no run STARTED without a process, no
pool slot held, no MLflow run left RUNNING, one champion in the registry, the API's loader,
`status`, the retrain decision, the deployment log and Dagster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mlplatform.state import StatePaths

BIN = Path(sys.executable).parent
SETTINGS = {  # a small model; the first champion after 7 days; a long cooldown after a retrain
    "MLPLATFORM_MODEL_HOLDOUT_DAYS": "2", "MLPLATFORM_MODEL_VALIDATION_DAYS": "2", "MLPLATFORM_MODEL_MIN_TRAIN_DAYS": "3",
    "MLPLATFORM_MODEL_MAX_EPOCHS": "2", "MLPLATFORM_MODEL_MIN_FIRST_AUC": "0", "MLPLATFORM_MODEL_MIN_TRAIN_ROWS": "100",
    "MLPLATFORM_MODEL_GATE_TOLERANCE": "1", "MLPLATFORM_RETRAIN_MIN_NEW_LABELED_FLIGHTS": "500",
    "MLPLATFORM_RETRAIN_COOLDOWN_MINUTES": "30", "MLPLATFORM_TRAINING_DEVICE": "cpu", "MLPLATFORM_SENSORS": "stopped",
}

pytestmark = pytest.mark.slow


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **SETTINGS, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    env.pop("MLPLATFORM_PAUSE_AT", None)
    return {**env, **extra}


def mlplatform(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlplatform"), *args], env=_env(home, **extra), capture_output=True,
                          text=True, timeout=600)


def start(home: Path, *args: str, **extra: str) -> subprocess.Popen:
    """A command in a process group of its own (so `kill -9` of the group takes its children too)."""
    log = home.parent / f"{home.name}-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "mlplatform"), *args], env=_env(home, **extra), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log  # type: ignore[attr-defined]
    return process


def kill_at(home: Path, point: str, *args: str, **extra: str) -> None:
    """Start `mlplatform pipeline`, wait for it to reach `point`, and `kill -9` its process group."""
    from mlplatform.faults import kill_at_point

    kill_at_point([str(BIN / "mlplatform"), "pipeline", *args], _env(home, **extra), home, point,
                  log=home.parent / f"{home.name}-{point}.log", timeout_s=400)


def landed_flights(home: Path) -> int:
    """The real number of flights in the landed days: the data rows of the files as delivered."""
    from mlplatform.ingest.landing import data_rows

    return sum(data_rows(p.read_bytes()) for p in (home / "landing" / "flights").glob("*.csv"))


def assert_consistent(home: Path) -> dict:
    """Every reader agrees, and nothing a crash left behind is still in flight. Returns the status."""
    from mlplatform.automation.deployments import dagster_champion
    from mlplatform.model.deployment import history, served_champion
    from mlplatform.model.tracking import CHAMPION, EXPERIMENT, client, version_for_alias

    paths = StatePaths.resolve(home)
    flights = pq.read_table(paths.exports / "fct_flights", columns=["flight_id"]).column("flight_id").to_pylist()
    assert len(flights) == landed_flights(home)
    assert len(set(flights)) == len(flights), "a flight is stored twice"

    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        in_flight = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                                                              dg.DagsterRunStatus.NOT_STARTED]))
        assert not in_flight, f"runs left in flight: {[(r.job_name, r.status) for r in in_flight]}"
        claimed = instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        assert not claimed, f"pool slots still held: {claimed}"
        in_dagster = dagster_champion(instance)

    tracker = client(paths)
    experiment = tracker.get_experiment_by_name(EXPERIMENT)
    running = tracker.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") if experiment else []
    assert not running, "an MLflow run was left RUNNING"

    status = json.loads(mlplatform(home, "status", "--json").stdout)
    held = version_for_alias(paths, CHAMPION)
    if held is not None:
        registry = int(held.version)
        assert served_champion(paths)["version"] == registry  # the API and the retrain decision read this
        assert status["models"]["aliases"]["champion"]["version"] == registry
        assert history(paths)[-1]["version"] == registry
        assert in_dagster == registry
    assert status["automation"]["stuck_runs"] == []
    return status


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("faults") / "home"
    assert mlplatform(home, "replay", "--days", "9").returncode == 0
    yield home


def test_kill_during_dbt_then_training_then_plain_reruns_complete_the_work(home: Path) -> None:
    kill_at(home, "dbt_build")
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        [stuck] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert stuck.job_name == "reference_refresh"  # the first dbt build: the reference models
    status = json.loads(mlplatform(home, "status", "--json").stdout)
    assert [r["job"] for r in status["automation"]["stuck_runs"]] == ["reference_refresh"]  # status tells the truth

    # The rerun fails the dead run, frees its slot, redoes the refresh; this one dies in training.
    kill_at(home, "training")
    # No champion yet: the crashed retrain starts no cooldown, so a plain rerun trains at once.
    rerun = mlplatform(home, "pipeline")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "recovered: run" in rerun.stdout and "process" in rerun.stdout
    status = assert_consistent(home)
    assert status["models"]["aliases"]["champion"]["version"] >= 1
    failed = [f for f in status["automation"]["failures"] if f["job"] in ("daily_refresh", "retrain")]
    assert failed, "the crashed runs are recorded as failed"


def test_kill_during_the_online_write_then_a_rerun_completes_it(home: Path) -> None:
    assert mlplatform(home, "replay", "--days", "1").returncode == 0
    kill_at(home, "online_write")
    rerun = mlplatform(home, "pipeline")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "daily_refresh" in rerun.stdout
    assert_consistent(home)
    from mlplatform.features.repo import open_store
    from mlplatform.features.online import service_views
    from mlplatform.features.service import SERVICE_NAME

    views = service_views(open_store(StatePaths.resolve(home)), SERVICE_NAME)
    ends = {v.name: v.most_recent_end_time for v in views}
    assert all(ends.values()) and len({e.date() for e in ends.values() if e is not None}) == 1, ends


def test_kill_after_the_champion_alias_moved_is_reconciled(home: Path) -> None:
    from mlplatform.model.deployment import history, served_champion
    from mlplatform.model.tracking import CHAMPION, version_for_alias

    paths = StatePaths.resolve(home)
    before = history(paths)[-1]["version"]
    assert mlplatform(home, "replay", "--days", "1").returncode == 0
    kill_at(home, "after_champion_alias", MLPLATFORM_RETRAIN_COOLDOWN_MINUTES="0")
    moved = int(version_for_alias(paths, CHAMPION).version)
    assert moved > before and history(paths)[-1]["version"] == before  # the crash fell between the two
    # Readers follow the registry even before any repair: the API's loader, status, the decision.
    assert served_champion(paths)["version"] == moved
    assert json.loads(mlplatform(home, "status", "--json").stdout)["models"]["aliases"]["champion"]["version"] == moved

    rerun = mlplatform(home, "pipeline")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "deployment log missed champion version" in rerun.stdout
    assert_consistent(home)

    # A rollback is recorded in Dagster too.
    assert mlplatform(home, "rollback", "--reason", "test").returncode == 0
    assert_consistent(home)


def test_a_corrected_earlier_day_rebuilds_the_later_days_like_a_build_from_scratch(home: Path, tmp_path: Path) -> None:
    """A re-delivered day changes the trailing windows of the days after it: the rerun rebuilds them,
    and every feature table equals one built from scratch on the same files."""
    import shutil

    from mlplatform.ingest.landing import LandingZone

    paths = StatePaths.resolve(home)
    zone = LandingZone(paths.landing, paths.quarantine)
    assert mlplatform(home, "pipeline", "--no-retrain").returncode == 0  # every landed day refreshed
    day = "2013-01-03"
    original = zone.file("flights", day).read_bytes()
    header, *rows = original.splitlines(keepends=True)
    zone.deliver("flights", day, header + b"".join(r for r in rows if b",UA," not in r))  # UA's flights removed
    rerun = mlplatform(home, "pipeline", "--no-retrain")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        [refresh] = instance.get_runs(dg.RunsFilter(job_name="daily_refresh"), limit=1)
    newest = zone.days("flights")[-1]
    assert refresh.tags["mlplatform/days"] == f"{day}..{newest}"  # the later days read the changed one

    scratch = tmp_path / "scratch"
    shutil.copytree(paths.landing, scratch / "landing")
    assert mlplatform(scratch, "pipeline", "--no-retrain").returncode == 0
    assert_same_exports(paths, StatePaths.resolve(scratch))
    assert_consistent(home)


def assert_same_exports(paths: StatePaths, scratch: StatePaths) -> None:
    import pandas as pd

    tables = sorted(p.name for p in scratch.exports.iterdir() if p.name.startswith(("feat_", "fct_")))
    assert "feat_carrier_delay_stats" in tables
    for table in tables:
        ours, theirs = (pq.read_table(p.exports / table).to_pandas() for p in (paths, scratch))
        columns = sorted(ours.columns)
        ours, theirs = (f[columns].sort_values(columns).reset_index(drop=True) for f in (ours, theirs))
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=False, obj=table)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {done.stderr.decode().strip()}")


def test_a_new_directory_read_only_then_commands_at_once_then_a_full_disk(tmp_path: Path) -> None:
    """On one new state directory: refused while read-only; then four pipelines and a status started
    at once neither corrupt nor fail it; then the disk fills while the next day is written to the
    online store, and the rerun after space returns redoes the refresh."""
    home = tmp_path / "home"
    _mount_tmpfs(home, "256m")
    try:
        assert mlplatform(home, "replay", "--days", "2").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        refused = mlplatform(home, "pipeline")
        assert refused.returncode == 2
        assert f"the state directory {home} is not writable" in refused.stderr
        assert "Read-only file system" in refused.stderr
        subprocess.run(["mount", "-o", "remount,rw", str(home)], check=True)
        assert not (home / "dagster" / "dagster.yaml").exists()  # nothing was written: still a new directory

        commands = [start(home, "pipeline", "--no-retrain") for _ in range(4)] + [start(home, "status")]
        codes = [c.wait(timeout=600) for c in commands]
        assert codes == [0] * 5, [c.log.read_text()[-2000:] for c in commands]
        assert_consistent(home)
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            for key in ("raw_flights", "raw_weather"):
                records = instance.fetch_materializations(dg.AssetKey(key), limit=100).records
                assert sorted(r.partition_key for r in records) == ["2013-01-01", "2013-01-02"], key

        _full_disk_during_the_online_write(home)
    finally:
        subprocess.run(["umount", "-l", str(home / "feast")], capture_output=True)
        subprocess.run(["umount", "-l", str(home)], capture_output=True)


def _full_disk_during_the_online_write(home: Path) -> None:
    import shutil

    assert mlplatform(home, "replay", "--days", "1").returncode == 0
    feast, aside = home / "feast", home / "feast-aside"
    feast.rename(aside)
    used = sum(f.stat().st_size for f in aside.iterdir())
    _mount_tmpfs(feast, f"{used // 1024 + 96}k")  # the store as it is, and too little to write a day
    for f in aside.iterdir():
        shutil.copy2(f, feast / f.name)
    full = mlplatform(home, "pipeline", "--no-retrain", MLPLATFORM_MIN_FREE_MB="0")
    assert full.returncode == 1, full.stdout[-3000:]
    assert "online store" in full.stdout and "could not be written" in full.stdout
    assert "waiting for 1 stored day(s) to be refreshed" in full.stdout  # no retrain on a failed refresh
    status = json.loads(mlplatform(home, "status", "--json").stdout)
    assert status["automation"]["unrefreshed_days"] == ["2013-01-03"]

    subprocess.run(["mount", "-o", "remount,size=64m", str(feast)], check=True)
    rerun = mlplatform(home, "pipeline", "--no-retrain")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "daily_refresh" in rerun.stdout
    assert_consistent(home)
    from mlplatform.features.online import service_views
    from mlplatform.features.repo import open_store
    from mlplatform.features.service import SERVICE_NAME

    store = open_store(StatePaths.resolve(home))
    plane = store.get_online_features(features=["plane:plane_seats"], entity_rows=[{"tail_number": "N14228"}]).to_dict()
    assert plane["plane_seats"] == [149]
    ends = {v.name: v.most_recent_end_time for v in service_views(store, SERVICE_NAME)}
    assert len({e.date() for e in ends.values()}) == 1, ends  # every view through the new day
