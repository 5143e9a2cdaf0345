{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    tags=['daily'],
    meta={'export': 'as_of_date', 'lookback_days': var('trailing_window_days')},
) }}

{{ trailing_delay_stats('route', 'route') }}
