{{ config(
    materialized='incremental',
    unique_key='purchase_date',
    tags=['daily'],
    meta={'export': 'purchase_date'},
) }}

-- The customer's history as of the end of each day they bought: how often and how much, how long
-- a customer, how long since the previous purchase, and trailing 30/90/365-day spend. Only that day
-- and the days before it are read, so a row is known at its event_timestamp.
{% set windowed = partition_min_day() is not none and not flags.FULL_REFRESH %}

with days as (
    select customer_id, purchase_date, sum(dollar_value) as spend, sum(number_of_cds) as cds
    from {{ ref('stg_purchases') }}
    {% if windowed %}
    where purchase_date <= cast('{{ partition_max_day() }}' as date)
    {% endif %}
    group by customer_id, purchase_date
),

history as (
    select
        customer_id,
        purchase_date,
        timezone('UTC', cast(purchase_date as timestamp) + interval '1 day' - interval '1 second') as event_timestamp,
        spend as spend_today,
        cast(cds as double precision) as cds_today,
        cast(count(*) over to_date as double precision) as purchase_days_to_date,
        sum(spend) over to_date as spend_to_date,
        {{ ratio('sum(spend) over to_date', 'count(*) over to_date') }} as mean_spend_per_day,
        cast(purchase_date - min(purchase_date) over to_date as double precision) as tenure_days,
        cast(purchase_date - lag(purchase_date) over by_day as double precision) as days_since_previous,
        sum(spend) over (partition by customer_id order by purchase_date
                         range between interval '29 days' preceding and current row) as spend_last_30d,
        sum(spend) over (partition by customer_id order by purchase_date
                         range between interval '89 days' preceding and current row) as spend_last_90d,
        sum(spend) over (partition by customer_id order by purchase_date
                         range between interval '364 days' preceding and current row) as spend_last_365d
    from days
    window
        by_day as (partition by customer_id order by purchase_date),
        to_date as (partition by customer_id order by purchase_date rows between unbounded preceding and current row)
)

select * from history
{% if windowed %}
where purchase_date between cast('{{ partition_min_day() }}' as date) and cast('{{ partition_max_day() }}' as date)
{% endif %}
