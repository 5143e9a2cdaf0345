"""One writer at a time: concurrent warehouse builds wait for each other instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import land_and_load, warehouse_table
from mlplatform.prepare import prepare
from mlplatform.warehouse.lock import WarehouseBusy, warehouse_lock

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_writer_waits_for_the_first(tmp_path) -> None:
    order: list[str] = []
    waited: list[str] = []

    def second() -> None:
        with warehouse_lock(tmp_path, on_wait=waited.append):
            order.append("second")

    with warehouse_lock(tmp_path):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
    assert waited and "waiting" in waited[0]


def test_a_writer_gives_up_after_its_timeout(tmp_path) -> None:
    import pytest

    with warehouse_lock(tmp_path):
        result: list[BaseException] = []

        def impatient() -> None:
            try:
                with warehouse_lock(tmp_path, timeout_s=0.3):
                    pass
            except WarehouseBusy as err:
                result.append(err)

        thread = threading.Thread(target=impatient)
        thread.start()
        thread.join(timeout=10)
    assert result and "stayed locked" in str(result[0])
    with pytest.raises(WarehouseBusy, match="writer.lock"):
        raise result[0]


def _materialize(paths, select: str, partition: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "MLPLATFORM_HOME": str(paths.home), "DAGSTER_HOME": str(paths.dagster_home)}
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
               "-m", "mlplatform.definitions", "--select", select]
    if partition:
        command += ["--partition", partition]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_two_daily_builds_at_once_both_succeed(paths) -> None:
    from mlplatform.assets.transformed import dbt_daily_models, dbt_reference_models

    land_and_load(paths, "2013-01-03")
    prepare(paths)
    reference = _materialize(paths, ",".join(k.to_user_string() for k in dbt_reference_models.keys))
    assert reference.wait(timeout=300) == 0, reference.stdout.read()[-3000:]

    daily = ",".join(k.to_user_string() for k in dbt_daily_models.keys)
    runs = [_materialize(paths, daily, day) for day in ("2013-01-02", "2013-01-03")]
    logs = [run.communicate(timeout=300)[0] for run in runs]
    for run, log in zip(runs, logs):
        assert run.returncode == 0, log[-3000:]
        assert "Could not set lock" not in log
    # They overlapped: one waited its turn, on the instance's `warehouse` pool or on the lock.
    assert any("blocked by limit for pool warehouse" in log or "waiting for" in log for log in logs)
    days = warehouse_table(paths, "select distinct flight_date from fct_flights order by 1")
    assert days.flight_date.astype(str).tolist() == ["2013-01-02", "2013-01-03"]
