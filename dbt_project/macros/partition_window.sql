{#-
  The days a partitioned run builds. The platform sets them for each build in the environment,
  MLPLATFORM_DBT_MIN_DAY and MLPLATFORM_DBT_MAX_DAY (dbt by hand: set them, or leave them unset to
  build every day). They are read only when dbt executes, never while it parses: as vars (or read
  at parse time), a new day would make dbt parse the whole project again on every build.
-#}
{% macro partition_day(bound) -%}
  {%- if not execute -%}
    {#- Parsing: any date renders the model's SQL; its refs and config are what dbt reads. -#}
    {{- return('1970-01-01') -}}
  {%- endif -%}
  {%- set value = env_var('MLPLATFORM_DBT_' ~ bound ~ '_DAY', '') -%}
  {{- return(value if value else none) -}}
{%- endmacro %}

{#- The run's first day (YYYY-MM-DD), or none for a build of every day. -#}
{% macro partition_min_day() -%}{{- return(partition_day('MIN')) -}}{%- endmacro %}

{#- The run's last day. -#}
{% macro partition_max_day() -%}{{- return(partition_day('MAX')) -}}{%- endmacro %}

{#-
  The rows a partitioned run builds; `lookback_days` widens what a model reads (not what it
  writes) for trailing windows. A full refresh, or no window set, builds every day.
-#}
{% macro in_partition_window(column, lookback_days=0) -%}
  {%- if partition_min_day() is not none and not flags.FULL_REFRESH -%}
    {{ column }} between cast('{{ partition_min_day() }}' as date) - {{ lookback_days }}
                     and cast('{{ partition_max_day() }}' as date)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}


{#- Midnight at the start of a local day, as a UTC timestamp. -#}
{% macro local_midnight_utc(day) -%}
  timezone('{{ var("local_timezone") }}', cast({{ day }} as timestamp))
{%- endmacro %}
