{{ config(tags=['daily']) }}

-- One row per scheduled departure, renamed and typed. `flight_date` is the lake partition, so
-- downstream filters on it prune to the days they need.
with source as (
    select * from {{ source('raw', 'flights') }}
)

select
    {{ flight_id('carrier', 'flight', 'origin', '"date"', 'sched_dep_time') }} as flight_id,
    "date" as flight_date,
    carrier as carrier_code,
    flight as flight_number,
    tailnum as tail_number,
    origin as origin_code,
    dest as dest_code,
    origin || '-' || dest as route,
    -- time_hour is the scheduled departure's hour in UTC; its minute completes it.
    {{ dbt.dateadd('minute', 'minute', 'time_hour') }} as scheduled_departure_utc,
    {{ local_timestamp('year', 'month', 'day', 'hour', 'minute') }} as scheduled_departure_local,
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
