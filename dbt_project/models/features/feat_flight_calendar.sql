{{ config(
    materialized='incremental',
    unique_key='flight_date',
    tags=['daily'],
    meta={'export': 'flight_date'},
) }}

-- Calendar features of the scheduled departure, known as soon as the flight is scheduled.
-- The feature stage computes the same from the request at serving time; tests hold the two equal.
with flights as (
    select flight_id, flight_date, scheduled_departure_utc, scheduled_departure_local
    from {{ ref('fct_flights') }}
    where {{ in_partition_window('flight_date') }}
),

nearest_holiday as (
    select f.flight_id, min(abs(h.holiday_date - f.flight_date)) as days_to_nearest_holiday
    from flights as f
    cross join {{ ref('us_federal_holidays') }} as h
    group by f.flight_id
)

select
    f.flight_id,
    f.scheduled_departure_utc as event_timestamp,
    f.flight_date,
    hour(f.scheduled_departure_local) as departure_hour,
    isodow(f.flight_date) as day_of_week,
    month(f.flight_date) as month,
    n.days_to_nearest_holiday
from flights as f
inner join nearest_holiday as n using (flight_id)
