{{ config(
    materialized='incremental',
    unique_key='flight_date',
    tags=['daily'],
) }}

-- Each day's outcomes per route, carrier and origin: the small daily table the trailing
-- delay statistics add up, so a new day costs the same whatever the length of the history.
with flights as (
    select * from {{ ref('stg_flights') }}
    where {{ in_partition_window('flight_date') }}
),

by_grain as (
    select flight_date, 'route' as grain, route as grain_key, is_cancelled, is_delayed, dep_delay_minutes
    from flights
    union all
    select flight_date, 'carrier', carrier_code, is_cancelled, is_delayed, dep_delay_minutes from flights
    union all
    select flight_date, 'origin', origin_code, is_cancelled, is_delayed, dep_delay_minutes from flights
)

select
    flight_date,
    grain,
    grain_key,
    count(*) as flights,
    count(*) filter (where not is_cancelled) as departed,
    count(*) filter (where is_delayed) as delayed,
    cast(coalesce(sum(dep_delay_minutes), 0) as double precision) as dep_delay_minutes_sum
from by_grain
group by flight_date, grain, grain_key
