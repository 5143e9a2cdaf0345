{{ config(
    materialized='incremental',
    unique_key='departure_date',
    tags=['daily'],
    meta={'export': 'departure_date', 'lookback_days': 2},
) }}

-- How late each plane's latest departure from New York left: one row per departure, in force
-- until the plane's next one (the departure stream pushes the same row as the plane leaves).
with departures as (
    {{ departures('tail_number') }}
),

ranked as (
    select
        *,
        row_number() over (partition by tail_number, departed_at_utc
                           order by {{ bytewise('flight_id') }} desc) as from_last_in_minute
    from departures
    where tail_number is not null
)

select
    tail_number,
    departed_at_utc as event_timestamp,
    departure_date,
    cast(dep_delay_minutes as double precision) as last_dep_delay
from ranked
where from_last_in_minute = 1 and {{ in_partition_window('departure_date') }}
