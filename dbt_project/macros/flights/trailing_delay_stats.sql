{#-
  Delay statistics of one grain (route, carrier or origin) over the 7 and 28 days that end the
  day before each as-of day: a flight on day D only ever sees outcomes of days before D.
  One row per key and as-of day, for keys with flights in the 28 days before it; its event
  timestamp is the as-of day's local midnight, when the previous day's outcomes are complete.
-#}
{% macro trailing_delay_stats(grain, key_name) -%}
with daily as (
    select * from {{ ref('int_flight_outcomes_daily') }}
    where grain = '{{ grain }}' and {{ in_partition_window('flight_date', lookback_days=delay_stats_window_days()) }}
),

as_of_days as (
    select distinct flight_date as as_of_date
    from {{ ref('int_flight_outcomes_daily') }}
    where {{ in_partition_window('flight_date') }}
),

windows as (
    select
        d.as_of_date,
        s.grain_key,
        sum(s.flights) filter (where s.flight_date >= d.as_of_date - 7) as flights_7d,
        sum(s.delayed) filter (where s.flight_date >= d.as_of_date - 7) as delayed_7d,
        sum(s.dep_delay_minutes_sum) filter (where s.flight_date >= d.as_of_date - 7) as delay_minutes_7d,
        sum(s.departed) filter (where s.flight_date >= d.as_of_date - 7) as departed_7d,
        sum(s.flights) as flights_28d,
        sum(s.delayed) as delayed_28d,
        sum(s.dep_delay_minutes_sum) as delay_minutes_28d,
        sum(s.departed) as departed_28d
    from as_of_days as d
    inner join daily as s
        on s.flight_date between d.as_of_date - {{ delay_stats_window_days() }} and d.as_of_date - 1
    group by d.as_of_date, s.grain_key
)

select
    grain_key as {{ key_name }},
    as_of_date,
    {{ local_midnight_utc('as_of_date') }} as event_timestamp,
    cast(coalesce(flights_7d, 0) as bigint) as flights_7d,
    {{ ratio('delayed_7d', 'flights_7d') }} as delay_rate_7d,
    {{ ratio('delay_minutes_7d', 'departed_7d') }} as mean_dep_delay_7d,
    cast(flights_28d as bigint) as flights_28d,
    {{ ratio('delayed_28d', 'flights_28d') }} as delay_rate_28d,
    {{ ratio('delay_minutes_28d', 'departed_28d') }} as mean_dep_delay_28d
from windows
{%- endmacro %}


{#- The longest window of the delay statistics, in days: a day's statistics read this many days
    before it, so a corrected day also rebuilds the days after it, up to this many (the models
    declare it as `meta.lookback_days`, which the platform reads). -#}
{% macro delay_stats_window_days() -%}
  {{ return(28) }}
{%- endmacro %}
