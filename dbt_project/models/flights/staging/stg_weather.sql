{{ config(tags=['daily']) }}

with source as (
    select * from {{ source('raw', 'weather') }}
)

select
    origin as airport_code,
    "date" as weather_date,
    time_hour as observed_at_utc,
    temp as temperature_f,
    dewp as dewpoint_f,
    humid as humidity_pct,
    wind_dir as wind_direction_deg,
    wind_speed as wind_speed_mph,
    wind_gust as wind_gust_mph,
    precip as precipitation_in,
    pressure as pressure_mb,
    visib as visibility_mi
from source
