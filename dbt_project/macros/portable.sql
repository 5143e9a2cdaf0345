{#-
  What DuckDB and PostgreSQL spell differently, so every model runs unchanged on both targets
  (dbt's own cross-database macros, like `dbt.dateadd`, cover the rest). Each macro dispatches on
  the adapter: `default__` is the portable form, an adapter's own form only where it differs.
-#}

{#- The flight's key: carrier, number, origin, local day (YYYYMMDD) and scheduled HHMM, e.g.
    UA1545-EWR-20130101-0515. -#}
{% macro flight_id(carrier, flight, origin, day, hhmm) -%}
  {{ carrier }} || cast({{ flight }} as varchar) || '-' || {{ origin }} || '-'
    || replace(cast({{ day }} as varchar), '-', '') || '-' || lpad(cast({{ hhmm }} as varchar), 4, '0')
{%- endmacro %}


{#- A wall-clock timestamp (no time zone) from its parts. PostgreSQL's make_timestamp takes
    integers, DuckDB's bigints: integers fit both. -#}
{% macro local_timestamp(year, month, day, hour, minute) -%}
  make_timestamp(cast({{ year }} as integer), cast({{ month }} as integer), cast({{ day }} as integer),
                 cast({{ hour }} as integer), cast({{ minute }} as integer), 0)
{%- endmacro %}


{#- A share or a mean as a double: PostgreSQL divides integers (and sums of them, numerics)
    exactly or truncating, DuckDB in floating point. Null when the denominator is zero. -#}
{% macro ratio(numerator, denominator) -%}
  cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0)
{%- endmacro %}


{#-
  Taken by every model before it writes and released after: on PostgreSQL, a session lock on the
  model's name, so two runs over different days never collide on the same relation's DDL. A view
  or table is rebuilt as `<name>__dbt_tmp`, the old one renamed to `<name>__dbt_backup` and dropped
  after the commit: a lock held only until the commit let a second run rename into a backup the
  first had not dropped yet ("relation ... __dbt_backup already exists"). Hence a session lock, not
  a transaction's; but taken by a hook *inside* the model's transaction: a hook outside it breaks
  the transaction (dbt sends `commit;` as a statement, psycopg2 then sends no BEGIN, and the two
  renames commit one by one, so a reader in between finds no relation: "relation ... does not
  exist"). It is released by a hook after the transaction and the drop. Runs still build
  different models at the same time. A model that fails keeps its lock until dbt's connection
  closes, at the end of the node. DuckDB has one writer anyway.
-#}
{% macro serialize_ddl() -%}
  {{ return(adapter.dispatch('serialize_ddl')()) }}
{%- endmacro %}

{% macro default__serialize_ddl() -%}
{%- endmacro %}

{% macro postgres__serialize_ddl() -%}
  select pg_advisory_lock(hashtext('{{ this }}'))
{%- endmacro %}

{% macro release_ddl() -%}
  {{ return(adapter.dispatch('release_ddl')()) }}
{%- endmacro %}

{% macro default__release_ddl() -%}
{%- endmacro %}

{% macro postgres__release_ddl() -%}
  select pg_advisory_unlock(hashtext('{{ this }}'))
{%- endmacro %}
