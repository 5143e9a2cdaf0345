select * from {{ ref('stg_carriers') }}
