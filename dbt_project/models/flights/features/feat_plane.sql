{{ config(meta={'export': 'whole'}) }}

-- The plane flying the flight. The registry has no dates, so its rows are valid from before the
-- first flight. Tail numbers missing from the registry have no row: their features are null.
select
    tail_number,
    cast('{{ var("reference_valid_from") }}' as timestamptz) as event_timestamp,
    age_years as plane_age_years,
    seats as plane_seats,
    engines as plane_engines,
    plane_type,
    engine_type as plane_engine_type,
    manufacturer as plane_manufacturer
from {{ ref('dim_planes') }}
