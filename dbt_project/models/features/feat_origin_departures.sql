{{ config(
    materialized='incremental',
    unique_key='departure_date',
    tags=['daily'],
    meta={'export': 'departure_date'},
) }}

-- How late the origin's latest departures left, after each departure minute: what the departure
-- stream's consumer pushes online (mlplatform.streaming.features), computed from the end-of-day
-- file. A row holds from its minute until the origin's next departure; a flight scored `lead`
-- minutes before it leaves reads the row in force then, so only departures already gone.
with departures as (
    {{ departures('origin_code') }}
),

windows as (
    select
        origin_code,
        departed_at_utc,
        departure_date,
        avg(dep_delay_minutes) over last_10 as mean_delay_last_10,
        avg(case when dep_delay_minutes > 15 then 1.0 else 0.0 end) over last_10 as delayed_share_last_10,
        avg(dep_delay_minutes) over last_30 as mean_delay_last_30,
        -- The minute's last departure carries the row: every departure of the minute counted.
        row_number() over (partition by origin_code, departed_at_utc
                           order by {{ bytewise('flight_id') }} desc) as from_last_in_minute
    from departures
    window
        last_10 as (partition by origin_code order by departed_at_utc, {{ bytewise('flight_id') }}
                    rows between 9 preceding and current row),
        last_30 as (partition by origin_code order by departed_at_utc, {{ bytewise('flight_id') }}
                    rows between 29 preceding and current row)
)

select
    origin_code,
    departed_at_utc as event_timestamp,
    departure_date,
    cast(mean_delay_last_10 as double precision) as mean_delay_last_10,
    cast(delayed_share_last_10 as double precision) as delayed_share_last_10,
    cast(mean_delay_last_30 as double precision) as mean_delay_last_30
from windows
where from_last_in_minute = 1 and {{ in_partition_window('departure_date') }}
