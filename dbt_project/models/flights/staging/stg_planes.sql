select
    tailnum as tail_number,
    year as year_built,
    type as plane_type,
    manufacturer,
    model,
    engines,
    seats,
    speed as cruising_speed_mph,
    engine as engine_type
from {{ source('raw', 'planes') }}
