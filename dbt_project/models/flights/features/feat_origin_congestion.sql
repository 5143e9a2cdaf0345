{{ config(
    materialized='incremental',
    unique_key='flight_date',
    tags=['daily'],
    meta={'export': 'flight_date'},
) }}

-- Scheduled departures per origin and hour, and per origin and day. The schedule is published
-- before the day starts, so these counts are known before any of its flights leave; cancelled
-- flights count, because their cancellation is not known in advance.
with flights as (
    select * from {{ ref('fct_flights') }}
    where {{ in_partition_window('flight_date') }}
),

hourly as (
    select
        origin_code,
        flight_date,
        date_trunc('hour', scheduled_departure_utc) as event_timestamp,
        count(*) as scheduled_departures_hour
    from flights
    group by origin_code, flight_date, date_trunc('hour', scheduled_departure_utc)
)

select
    origin_code,
    event_timestamp,
    flight_date,
    scheduled_departures_hour,
    cast(sum(scheduled_departures_hour) over (partition by origin_code, flight_date) as bigint)
        as scheduled_departures_day
from hourly
