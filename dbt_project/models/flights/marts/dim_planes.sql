select
    *,
    -- Ages in the data's year, 2013.
    2013 - year_built as age_years
from {{ ref('stg_planes') }}
