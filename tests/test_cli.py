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
