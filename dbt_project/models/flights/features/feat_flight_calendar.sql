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

-- Per day, not per flight: a few dozen rows to join back, whatever the engine's plan.
nearest_holiday as (
    select d.flight_date, cast(min(abs(h.holiday_date - d.flight_date)) as integer) as days_to_nearest_holiday
    from (select distinct flight_date from flights) as d
    cross join {{ ref('us_federal_holidays') }} as h
    group by d.flight_date
)

select
    f.flight_id,
    f.scheduled_departure_utc as event_timestamp,
    f.flight_date,
    cast(extract(hour from f.scheduled_departure_local) as integer) as departure_hour,
    cast(extract(isodow from f.flight_date) as integer) as day_of_week,
    cast(extract(month from f.flight_date) as integer) as month,
    n.days_to_nearest_holiday
from flights as f
inner join nearest_holiday as n using (flight_date)
