{{ config(
    materialized='incremental',
    unique_key='departure_date',
    tags=['daily'],
    meta={'export': 'departure_date', 'lookback_days': 2},
) }}

-- How late the origin's latest departures left, and how many of its day's flights are overdue,
-- after each departure minute: what the departure stream's consumer pushes online
-- (mlplatform.streaming.features), computed from the end-of-day file (macros/departures.sql). A row
-- holds from its minute until the origin's next departure; a flight scored `lead` minutes before it
-- leaves reads the row in force then: departures gone by then.
with recent as (
    {{ recent_departures('origin_code') }}
),

-- The day's flights, as the stream has them: the schedule (every flight, cancelled ones included,
-- published before the day) and the departures of those flights, whenever they left.
day_flights as (
    select
        origin_code,
        flight_date,
        scheduled_departure_utc,
        is_cancelled,
        {{ dbt.dateadd('minute', 'cast(dep_delay_minutes as integer)', 'scheduled_departure_utc') }}
            as departed_at_utc
    from {{ ref('fct_flights') }}
    where {{ in_partition_window('flight_date') }}
),

-- One running count per origin and local day: +1 scheduled when a flight falls due, +1 departed
-- when it leaves. A departure row (a probe, carrying its window features) reads both after
-- everything at its minute. The probes carry their columns through rather than being joined back
-- by (origin, minute): PostgreSQL took 140 s over that join for two weeks, DuckDB 0.15 s.
points as (
    select origin_code, flight_date as local_day, scheduled_departure_utc as moment, 1 as scheduled, 0 as departed,
        0 as probe, cast(null as date) as departure_date, cast(null as double precision) as mean_delay_last_10,
        cast(null as double precision) as delayed_share_last_10, cast(null as double precision) as mean_delay_last_30
    from day_flights
    union all
    select origin_code, flight_date, departed_at_utc, 0, 1, 0, null, null, null, null
    from day_flights
    where not is_cancelled
    union all
    select origin_code, departure_date, event_timestamp, 0, 0, 1, departure_date, mean_delay_last_10,
        delayed_share_last_10, mean_delay_last_30
    from recent
),

counted as (
    select
        *,
        sum(scheduled) over so_far - sum(departed) over so_far as backlog
    from points
    window so_far as (partition by origin_code, local_day order by moment, probe rows between unbounded preceding and current row)
)

select
    origin_code,
    moment as event_timestamp,
    departure_date,
    mean_delay_last_10,
    delayed_share_last_10,
    mean_delay_last_30,
    cast(backlog as double precision) as backlog
from counted
where probe = 1
