"""Crashes caused for real on one state directory, each followed by a plain rerun that must complete
the work.

`mlplatform pipeline` runs as a process group of its own; a crash point (`MLPLATFORM_PAUSE_AT`)
holds it at an exact moment (dbt running, the online store half written, training, the champion
alias moved but not yet logged) and the test kills the whole group with `kill -9`. After each
rerun every reader must agree (`fault_helpers.assert_consistent`): the flights stored once each, no
run STARTED without a process, no pool slot held, no MLflow run left RUNNING, one champion in the
registry, the API's loader, `status`, the retrain decision, the deployment log and Dagster. Then a
corrected earlier day must rebuild the later days exactly as a build from scratch would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from fault_helpers import assert_consistent, kill_at, mlplatform, start
from webhook import Receiver
from mlplatform.state import StatePaths

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("faults") / "home"
    assert mlplatform(home, "replay", "--days", "9").returncode == 0
    yield home


def test_kill_during_raw_dbt_and_training_then_plain_reruns_complete_the_work(home: Path) -> None:
    receiver = Receiver()  # each run found dead alerts once, at a webhook on 127.0.0.1
    hook = {"MLPLATFORM_ALERT_WEBHOOK_URL": receiver.url}
    kill_at(home, "raw_load", **hook)  # the first day of the range is in the lake, not yet recorded
    kill_at(home, "dbt_build", **hook)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        [stuck] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert stuck.job_name == "reference_refresh"  # the first dbt build: the reference models
        # The daemon's run monitoring asks the instance's launcher, which finds the process gone.
        health = instance.run_launcher.check_run_worker_health(stuck)
        assert health.status.value == "FAILED" and "is gone" in health.msg
    status = json.loads(mlplatform(home, "status", "--json").stdout)
    assert [r["job"] for r in status["automation"]["stuck_runs"]] == ["reference_refresh"]  # status tells the truth

    # The rerun fails the dead run, frees its slot, redoes the refresh; this one dies in training.
    kill_at(home, "training", **hook)
    # No champion yet: the crashed retrain starts no cooldown, so a plain rerun trains at once.
    rerun = mlplatform(home, "pipeline", **hook)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "recovered: run" in rerun.stdout and "process" in rerun.stdout
    # One alert per job whose run died, each naming the dead process; all cleared once they succeeded.
    jobs = [a["mlplatform"]["job"] for a in receiver.received]
    assert sorted(jobs) == sorted(set(jobs)) and set(jobs) == {"raw_reference", "reference_refresh", "retrain"}, jobs
    assert all("marked failed by mlplatform" in a["text"] for a in receiver.received)
    assert not [k for k in json.loads((home / "alerts_open.json").read_text()) if k.startswith("run_failed:")]
    receiver.close()
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
    # The build from scratch on the same files, in a state directory of its own, meanwhile.
    scratch = tmp_path / "scratch"
    shutil.copytree(paths.landing, scratch / "landing")
    from_scratch = start(scratch, "pipeline", "--no-retrain")
    rerun = mlplatform(home, "pipeline", "--no-retrain")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        [refresh] = instance.get_runs(dg.RunsFilter(job_name="daily_refresh"), limit=1)
    newest = zone.days("flights")[-1]
    assert refresh.tags["mlplatform/days"] == f"{day}..{newest}"  # the later days read the changed one

    assert from_scratch.wait(timeout=600) == 0, from_scratch.log.read_text()[-3000:]
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


