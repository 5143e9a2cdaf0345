{{ config(
    materialized='incremental',
    unique_key='flight_date',
    tags=['daily'],
    meta={'export': 'flight_date'},
) }}

-- One row per scheduled departure with its label and the keys of every entity the features
-- hang off. Unknown destinations and planes are kept, flagged.
with flights as (
    select * from {{ ref('stg_flights') }}
    where {{ in_partition_window('flight_date') }}
)

select
    f.flight_id,
    f.flight_date,
    f.scheduled_departure_utc,
    f.scheduled_departure_local,
    f.carrier_code,
    f.flight_number,
    f.tail_number,
    f.origin_code,
    f.dest_code,
    f.route,
    f.distance_miles,
    f.dep_delay_minutes,
    f.arr_delay_minutes,
    f.is_cancelled,
    f.is_delayed,
    d.airport_code is not null as is_dest_known,
    p.tail_number is not null as is_plane_known
from flights as f
left join {{ ref('dim_airports') }} as d on d.airport_code = f.dest_code
left join {{ ref('dim_planes') }} as p on p.tail_number = f.tail_number
