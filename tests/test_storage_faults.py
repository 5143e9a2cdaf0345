"""Storage faults on a new state directory: read-only, four commands at once, then a full disk under
the online store; after each, a plain rerun completes the work and every reader agrees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from webhook import Receiver
from fault_helpers import assert_consistent, mlplatform, mount_tmpfs, start
from mlplatform.state import StatePaths

pytestmark = pytest.mark.slow


def test_a_new_directory_read_only_then_commands_at_once_then_a_full_disk(tmp_path: Path) -> None:
    """On one new state directory: refused while read-only; then four pipelines and a status started
    at once neither corrupt nor fail it; then the disk fills while the next day is written to the
    online store, and the rerun after space returns redoes the refresh."""
    home = tmp_path / "home"
    mount_tmpfs(home, "256m")
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
    mount_tmpfs(feast, f"{used // 1024 + 96}k")  # the store as it is, and too little to write a day
    for f in aside.iterdir():
        shutil.copy2(f, feast / f.name)
    receiver = Receiver()  # the pipeline's own failed run alerts: no sensor watches it
    full = mlplatform(home, "pipeline", "--no-retrain", MLPLATFORM_MIN_FREE_MB="0",
                      MLPLATFORM_ALERT_WEBHOOK_URL=receiver.url)
    assert full.returncode == 1, full.stdout[-3000:]
    assert "online store" in full.stdout and "could not be written" in full.stdout
    assert "waiting for 1 stored day(s) to be refreshed" in full.stdout  # no retrain on a failed refresh
    status = json.loads(mlplatform(home, "status", "--json").stdout)
    assert status["automation"]["unrefreshed_days"] == ["2013-01-03"]
    [alert] = receiver.received
    assert alert["mlplatform"]["key"] == "run_failed:daily_refresh" and "could not be written" in alert["text"]
    assert "run_failed:daily_refresh" in json.loads((home / "alerts_open.json").read_text())

    subprocess.run(["mount", "-o", "remount,size=64m", str(feast)], check=True)
    rerun = mlplatform(home, "pipeline", "--no-retrain", MLPLATFORM_ALERT_WEBHOOK_URL=receiver.url)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "daily_refresh" in rerun.stdout
    # The job succeeded: its alert clears (nothing more is sent), and the next failure alerts again.
    assert "recovered: daily_refresh succeeded again; its failure alert is cleared" in rerun.stdout
    assert json.loads((home / "alerts_open.json").read_text()) == {} and len(receiver.received) == 1
    receiver.close()
    assert_consistent(home)
    from mlplatform.features.online import service_views
    from mlplatform.features.repo import open_store
    from mlplatform.features.service import SERVICE_NAME

    store = open_store(StatePaths.resolve(home))
    plane = store.get_online_features(features=["plane:plane_seats"], entity_rows=[{"tail_number": "N14228"}]).to_dict()
    assert plane["plane_seats"] == [149]
    ends = {v.name: v.most_recent_end_time for v in service_views(store, SERVICE_NAME)}
    assert len({e.date() for e in ends.values()}) == 1, ends  # every view through the new day


def test_a_disk_that_fills_during_a_command_gets_a_clear_error_and_a_rerun_completes(tmp_path: Path) -> None:
    """Past the free-space check (set to 0), the replay's own write fails on the full disk."""
    home = tmp_path / "home"
    mount_tmpfs(home, "200k")  # less than the reference tables
    try:
        full = mlplatform(home, "replay", "--days", "1", MLPLATFORM_MIN_FREE_MB="0")
        assert full.returncode == 2, full.stdout + full.stderr
        assert "mlplatform replay: cannot write" in full.stderr and "No space left on device" in full.stderr
        # Nothing half-written: every delivered file matches its manifest, no temporary file is left.
        from mlplatform.ingest.landing import manifest_for

        for data in (home / "landing").rglob("*.csv"):
            manifest = data.with_name(data.name + ".manifest.json")
            assert not manifest.exists() or json.loads(manifest.read_text()) == manifest_for(data.read_bytes())
        assert not list((home / "landing").rglob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=300m", str(home)], check=True)  # over the 200 MB check
        again = mlplatform(home, "replay", "--days", "1")
        assert again.returncode == 0, again.stderr
        assert (home / "landing" / "flights" / "2013-01-01.csv.manifest.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(home)], capture_output=True)
