{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    tags=['daily'],
    meta={'export': 'as_of_date', 'lookback_days': delay_stats_window_days()},
) }}

{{ trailing_delay_stats('carrier', 'carrier_code') }}
