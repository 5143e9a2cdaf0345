{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    tags=['daily'],
    meta={'export': 'as_of_date'},
) }}

{{ trailing_delay_stats('route', 'route') }}
