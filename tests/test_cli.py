"""`mlplatform prepare` and `mlplatform status` against a real state directory."""

from __future__ import annotations

import json

from helpers import materialize_raw
from mlplatform.cli import main


def test_prepare_creates_the_state_directory_and_keeps_what_is_there(tmp_path, capsys) -> None:
    home = tmp_path / "fresh"
    assert main(["--home", str(home), "prepare"]) == 0
    config = home / "dagster" / "dagster.yaml"
    assert config.exists()
    for folder in ("landing", "quarantine", "lake", "warehouse", "feast", "mlflow", "dagster"):
        assert (home / folder).is_dir()
    config.write_text("# edited by hand\n")
    assert main(["--home", str(home), "prepare"]) == 0
    assert config.read_text() == "# edited by hand\n"


def test_status_reports_landed_quarantined_and_loaded(instance, paths, capsys) -> None:
    assert main(["replay", "--days", "2"]) == 0
    assert materialize_raw(instance, paths, "flights", "2013-01-01").success
    (paths.landing / "flights" / "2013-01-02.csv").write_bytes(b"")
    assert not materialize_raw(instance, paths, "flights", "2013-01-02").success
    capsys.readouterr()

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["landing"]["landed_through"] == "2013-01-02"
    assert status["lake"]["flights"] == {"count": 1, "first": "2013-01-01", "last": "2013-01-01",
                                         "rows": 842, "rejected_rows": 0}
    assert [q["kind"] for q in status["quarantine"]] == ["empty"]

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "raw_flights      1 day(s), 2013-01-01 .. 2013-01-01: 842 rows" in text
    assert "empty: the file is empty" in text


def test_status_reads_the_embedded_instance_without_dagster_as_dagster_would(paths, tmp_path) -> None:
    """`status` answers from the embedded instance's tables with two queries: the same stored but
    unrefreshed days as `progress.stored_unrefreshed` through Dagster, and the runs in progress (then
    Dagster itself judges them). Any other storage is left to Dagster."""
    import dagster as dg

    import shutil
    import sqlite3
    from contextlib import closing

    from mlplatform.automation import instance_tables
    from mlplatform.automation.downstream import IN_PROGRESS
    from mlplatform.automation.progress import stored_unrefreshed

    assert main(["prepare"]) == 0 and main(["replay", "--days", "3"]) == 0
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        assert instance_tables.read(paths.dagster_home) == {"in_progress": 0, "unrefreshed_days": []}
        for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
            assert materialize_raw(instance, paths, "flights", day).success
        for day in ("2013-01-01", "2013-01-02"):
            assert materialize_raw(instance, paths, "weather", day).success
        # The first day carried downstream; the second stored after it was (a corrected file).
        for day in ("2013-01-01", "2013-01-02"):
            instance.report_runless_asset_event(dg.AssetMaterialization("online_features", partition=day))
        assert materialize_raw(instance, paths, "weather", "2013-01-02").success
        read = instance_tables.read(paths.dagster_home)
        assert read["unrefreshed_days"] == list(stored_unrefreshed(instance)) == ["2013-01-02"]

        instance.add_run(dg.DagsterRun(job_name="daily_refresh", run_id="f" * 36, status=dg.DagsterRunStatus.STARTED))
        assert instance_tables.read(paths.dagster_home)["in_progress"] == 1
        # A run being cancelled is not finished either; a finished one is.
        instance.add_run(dg.DagsterRun(job_name="daily_refresh", run_id="e" * 36, status=dg.DagsterRunStatus.CANCELING))
        instance.add_run(dg.DagsterRun(job_name="daily_refresh", run_id="d" * 36, status=dg.DagsterRunStatus.FAILURE))
        assert instance_tables.read(paths.dagster_home)["in_progress"] == 2
        assert len(instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS))) == 2  # what the sensors count

    # Tables this code does not know (another Dagster's schema): Dagster answers instead.
    changed = tmp_path / "changed_home"
    shutil.copytree(paths.dagster_home, changed)
    with closing(sqlite3.connect(changed / "history" / "runs.db")) as runs:
        runs.execute("alter table runs rename column status to run_status")
        runs.commit()
    assert instance_tables.read(changed) is None

    config = paths.dagster_home / "dagster.yaml"
    config.write_text(config.read_text() + "\nstorage:\n  sqlite:\n    base_dir: elsewhere\n")
    assert instance_tables.read(paths.dagster_home) is None
