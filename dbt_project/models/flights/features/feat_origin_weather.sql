{{ config(
    materialized='incremental',
    unique_key='weather_date',
    tags=['daily'],
    meta={'export': 'weather_date'},
) }}

-- Weather at each origin airport by hour. An observation is available from the hour it was taken:
-- a flight looks up the latest observation at or before its scheduled departure.
select
    airport_code as origin_code,
    observed_at_utc as event_timestamp,
    weather_date,
    temperature_f,
    dewpoint_f,
    humidity_pct,
    wind_speed_mph,
    wind_gust_mph,
    visibility_mi,
    precipitation_in,
    pressure_mb
from {{ ref('stg_weather') }}
where {{ in_partition_window('weather_date') }}
