{{ config(tags=['daily']) }}

-- One row per scheduled departure, renamed and typed. `flight_date` is the lake partition, so
-- downstream filters on it prune to the days they need.
with source as (
    select * from {{ source('raw', 'flights') }}
)

select
    printf('%s%d-%s-%s-%04d', carrier, flight, origin, strftime("date", '%Y%m%d'), sched_dep_time)
        as flight_id,
    "date" as flight_date,
    carrier as carrier_code,
    flight as flight_number,
    tailnum as tail_number,
    origin as origin_code,
    dest as dest_code,
    origin || '-' || dest as route,
    -- time_hour is the scheduled departure's hour in UTC; its minute completes it.
    time_hour + to_minutes(minute) as scheduled_departure_utc,
    make_timestamp(year, month, day, hour, minute, 0) as scheduled_departure_local,
    sched_dep_time as scheduled_departure_hhmm,
    dep_time as actual_departure_hhmm,
    dep_delay as dep_delay_minutes,
    arr_delay as arr_delay_minutes,
    air_time as air_time_minutes,
    distance as distance_miles,
    -- A flight that never departed has no departure time or delay.
    dep_delay is null as is_cancelled,
    -- The label: departed more than 15 minutes late, or cancelled.
    coalesce(dep_delay > 15, true) as is_delayed
from source
