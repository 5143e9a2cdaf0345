{{ config(
    materialized='incremental',
    unique_key='purchase_date',
    tags=['daily'],
    meta={'export': 'purchase_date', 'export_lookback_days': 90},
) }}

-- One row per customer and day with a purchase: the moment a prediction is made (the end of that
-- day, every purchase of it known) and its label, the customer's spend over the next 90 days. The
-- label is null until those 90 days have landed; so a run for days D also rewrites the 90 days
-- before them, whose labels the new days complete (meta export_lookback_days exports them again).
{% set horizon = 90 %}
{% set windowed = partition_min_day() is not none and not flags.FULL_REFRESH %}

with purchases as (
    select * from {{ ref('stg_purchases') }}
    {% if windowed %}
    where purchase_date between cast('{{ partition_min_day() }}' as date) - {{ horizon }}
                            and cast('{{ partition_max_day() }}' as date) + {{ horizon }}
    {% endif %}
),

days as (
    select
        customer_id,
        purchase_date,
        sum(dollar_value) as spend,
        sum(number_of_cds) as cds,
        count(*) as purchases
    from purchases
    group by customer_id, purchase_date
),

landed as (
    select max(purchase_date) as through from {{ ref('stg_purchases') }}
),

labelled as (
    select
        days.*,
        sum(spend) over (partition by customer_id order by purchase_date
                         range between interval '1 day' following and interval '{{ horizon }} days' following)
            as spend_after,
        landed.through
    from days cross join landed
)

select
    customer_id || '-' || replace(cast(purchase_date as varchar), '-', '') as customer_day_id,
    customer_id,
    purchase_date,
    timezone('UTC', cast(purchase_date as timestamp) + interval '1 day' - interval '1 second') as purchased_at_utc,
    spend,
    cds,
    purchases,
    case when purchase_date + {{ horizon }} <= through then coalesce(spend_after, 0) end as spend_next_90d
from labelled
{% if windowed %}
where purchase_date between cast('{{ partition_min_day() }}' as date) - {{ horizon }} and cast('{{ partition_max_day() }}' as date)
{% endif %}
