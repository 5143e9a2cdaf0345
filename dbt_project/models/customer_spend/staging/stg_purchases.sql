{{ config(tags=['daily'], materialized='view') }}

-- One row per purchase, typed. A customer may buy more than once a day (purchase_number).
select
    customer_id,
    cast(purchase_date as date) as purchase_date,
    purchase_number,
    number_of_cds,
    cast(dollar_value as double precision) as dollar_value
from {{ source('raw_customer_spend', 'purchases') }}
