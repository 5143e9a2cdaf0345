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
