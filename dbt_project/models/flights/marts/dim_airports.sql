select * from {{ ref('stg_airports') }}
