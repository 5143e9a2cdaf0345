{{ config(
    materialized='incremental',
    unique_key='departure_date',
    tags=['daily'],
    meta={'export': 'departure_date'},
) }}

-- How late the origin's latest departures left, after each departure minute: what the departure
-- stream's consumer pushes online (mlplatform.streaming.features), computed from the end-of-day
-- file (macros/departures.sql). A row holds from its minute until the origin's next departure; a
-- flight scored `lead` minutes before it leaves reads the row in force then: departures gone by then.
{{ recent_departures('origin_code') }}
