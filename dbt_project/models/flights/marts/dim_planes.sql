select
    *,
    {{ var('reference_year') }} - year_built as age_years
from {{ ref('stg_planes') }}
