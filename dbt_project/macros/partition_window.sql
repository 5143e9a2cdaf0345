{#-
  The rows a partitioned run builds. Dagster passes the partition's days as vars min_day and
  max_day; `lookback_days` widens what a model reads (not what it writes) for trailing windows.
  With no vars (a full refresh, or dbt by hand) every day is built.
-#}
{% macro in_partition_window(column, lookback_days=0) -%}
  {%- if var('min_day') is not none and not flags.FULL_REFRESH -%}
    {{ column }} between cast('{{ var("min_day") }}' as date) - {{ lookback_days }}
                     and cast('{{ var("max_day") }}' as date)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}


{#- Midnight at the start of a local day, as a UTC timestamp. -#}
{% macro local_midnight_utc(day) -%}
  timezone('{{ var("local_timezone") }}', cast({{ day }} as timestamp))
{%- endmacro %}
