{#-
  Departures as the departure stream sees them: every flight that left, at its actual departure
  (the scheduled one plus the delay), with the local day it left on. The same-day feature models
  are partitioned by that day, as the stream's clock is: a flight leaving after midnight counts on
  the day it left, not the day it was scheduled. Reads two days before the partition for windows.
-#}
{% macro departures(columns) -%}
with scheduled as (
    select *, {{ dbt.dateadd('minute', 'cast(dep_delay_minutes as integer)', 'scheduled_departure_utc') }}
        as departed_at_utc
    from {{ ref('fct_flights') }}
    where not is_cancelled and {{ in_partition_window('flight_date', lookback_days=2) }}
)

select
    {{ columns }},
    flight_id,
    departed_at_utc,
    cast(dep_delay_minutes as integer) as dep_delay_minutes,
    cast(timezone('{{ var("local_timezone") }}', departed_at_utc) as date) as departure_date
from scheduled
{%- endmacro %}


{#- Ties at one departure minute are taken in flight key order, bytewise on every engine (as the
    stream orders its events). -#}
{% macro bytewise(column) -%}
  {{ return(adapter.dispatch('bytewise')(column)) }}
{%- endmacro %}

{% macro default__bytewise(column) -%}
  {{ column }}
{%- endmacro %}

{% macro postgres__bytewise(column) -%}
  {{ column }} collate "C"
{%- endmacro %}


{#-
  How late the latest departures of one grain (origin, carrier, destination) from New York left,
  after each minute with a departure of that grain: mean delay of the last 10 and 30, share of the
  last 10 over 15 minutes. What the departure stream's consumer pushes online for the same grain
  (mlplatform.streaming.features), computed from the end-of-day file.
-#}
{% macro recent_departures(key) -%}
with departures as (
    {{ departures(key) }}
),

windows as (
    select
        {{ key }},
        departed_at_utc,
        departure_date,
        avg(dep_delay_minutes) over last_10 as mean_delay_last_10,
        avg(case when dep_delay_minutes > 15 then 1.0 else 0.0 end) over last_10 as delayed_share_last_10,
        avg(dep_delay_minutes) over last_30 as mean_delay_last_30,
        -- The minute's last departure carries the row: every departure of the minute counted.
        row_number() over (partition by {{ key }}, departed_at_utc
                           order by {{ bytewise('flight_id') }} desc) as from_last_in_minute
    from departures
    window
        last_10 as (partition by {{ key }} order by departed_at_utc, {{ bytewise('flight_id') }}
                    rows between 9 preceding and current row),
        last_30 as (partition by {{ key }} order by departed_at_utc, {{ bytewise('flight_id') }}
                    rows between 29 preceding and current row)
)

select
    {{ key }},
    departed_at_utc as event_timestamp,
    departure_date,
    cast(mean_delay_last_10 as double precision) as mean_delay_last_10,
    cast(delayed_share_last_10 as double precision) as delayed_share_last_10,
    cast(mean_delay_last_30 as double precision) as mean_delay_last_30
from windows
where from_last_in_minute = 1 and {{ in_partition_window('departure_date') }}
{%- endmacro %}
