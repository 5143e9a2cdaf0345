"""Data contracts: each kind of bad landing file is named; real gaps in the data are kept."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from landing_files import BAD_FILES, DAY, good, with_value
from mlplatform.defs.flights import feed
from mlplatform.defs.flights.contracts import CONTRACTS, FLIGHTS, WEATHER
from mlplatform.ingest.validate import ContractViolation, validate_csv

pytestmark = pytest.mark.fast  # in the fast lane (`make test-fast`)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_rejected_with_its_problem(case: str) -> None:
    make, kind = BAD_FILES[case]
    with pytest.raises(ContractViolation) as raised:
        validate_csv(FLIGHTS, make(good()), day=DAY)
    assert raised.value.kind == kind, raised.value.problem
    assert raised.value.problem


def test_messages_name_the_problem() -> None:
    def problem(data: bytes) -> str:
        with pytest.raises(ContractViolation) as raised:
            validate_csv(FLIGHTS, data, day=DAY)
        return raised.value.problem

    assert "missing columns: dep_delay" in problem(BAD_FILES["missing a column"][0](good()))
    assert "unexpected columns: gate" in problem(BAD_FILES["an extra column"][0](good()))
    assert "column dep_delay: 1 values are not float ('soon' on line 2)" in problem(
        BAD_FILES["wrongly typed"][0](good()))
    assert "1 of 944 rows belong to another day than the file's day 2013-01-02 (1 on 2013-01-03" in problem(
        BAD_FILES["rows from another day"][0](good()))
    assert "2 rows share a key" in problem(BAD_FILES["duplicate keys"][0](good()))
    assert "distance below 1" in problem(BAD_FILES["too many rejected rows"][0](good()))


def test_a_file_of_another_day_is_rejected_whole() -> None:
    with pytest.raises(ContractViolation, match="943 of 943 rows belong to another day"):
        validate_csv(FLIGHTS, good(day="2013-01-02"), day="2013-01-05")


def test_rows_breaking_row_rules_are_set_aside_with_their_reason() -> None:
    data = with_value(with_value(good(), "distance", "-5", 3), "dep_time", "1275", 7)
    result = validate_csv(FLIGHTS, data, day=DAY)

    assert result.rows_read == 943
    assert result.rows.num_rows == 941
    assert result.rejects["_line"].tolist() == [4, 8]
    assert result.rejects["_reason"].tolist() == [
        "distance below 1", "dep_time_is_time_of_day: dep_time must be a time of day written HHMM"]
    assert result.rejects["distance"].iloc[0] == "-5"
    assert result.reject_reasons == {"distance below 1": 1,
                                     "dep_time_is_time_of_day: dep_time must be a time of day written HHMM": 1}


def test_reject_limit_is_a_setting() -> None:
    data = with_value(good(), "distance", "-5", slice(1, 20))  # 19 of 943 rows: 2%
    assert validate_csv(FLIGHTS, data, day=DAY, max_reject_share=0.05).rows.num_rows == 943 - 19
    with pytest.raises(ContractViolation, match="above the 1.0% limit"):
        validate_csv(FLIGHTS, data, day=DAY, max_reject_share=0.01)


def test_real_gaps_are_kept_as_nulls() -> None:
    # Cancelled flights have no departure time; some tail numbers are unknown.
    result = validate_csv(FLIGHTS, good(), day=DAY)
    frame = result.rows.to_pandas()
    cancelled = frame[frame["dep_time"].isna()]
    assert len(cancelled) > 0 and len(result.rejects) == 0
    assert cancelled["dep_delay"].isna().all()

    planes = validate_csv(CONTRACTS["planes"], feed.reference_file("planes")).rows.to_pandas()
    unknown_planes = set(frame["tailnum"].dropna()) - set(planes["tailnum"])
    assert unknown_planes  # kept: flights are not rejected for planes the registry lacks
    assert planes["year"].isna().sum() == 70


def test_types_follow_the_contract() -> None:
    result = validate_csv(FLIGHTS, good(), day=DAY)
    assert result.rows.schema == FLIGHTS.arrow_schema()
    assert result.rows.schema.field("time_hour").type == pa.timestamp("us", tz="UTC")
    first_row_time = good().split(b"\n")[1].decode().rsplit(",", 1)[1]
    assert result.rows.column("time_hour")[0].as_py() == pd.Timestamp(first_row_time)


def test_the_real_outlier_wind_is_a_reject_not_a_failure() -> None:
    from datetime import date

    result = validate_csv(WEATHER, feed.daily_file("weather", date(2013, 2, 12)), day="2013-02-12")
    assert len(result.rejects) == 1
    assert result.reject_reasons == {"wind_speed above 200": 1}


def test_header_only_weather_day_is_valid() -> None:
    from datetime import date

    result = validate_csv(WEATHER, feed.daily_file("weather", date(2013, 12, 31)), day="2013-12-31")
    assert result.rows.num_rows == 0


def test_columns_in_another_order_are_accepted() -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(good().decode())))
    swapped = "\n".join(",".join(r[::-1]) for r in rows) + "\n"
    result = validate_csv(FLIGHTS, swapped.encode(), day=DAY)
    assert result.rows.column_names == FLIGHTS.column_names
    assert result.rows.num_rows == 943


def test_every_real_reference_table_passes() -> None:
    for table in ("airports", "airlines", "planes"):
        result = validate_csv(CONTRACTS[table], feed.reference_file(table))
        assert len(result.rejects) == 0 and result.rows.num_rows > 0
