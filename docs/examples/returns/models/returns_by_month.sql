select
    cast(date_trunc('month', order_date) as date) as month,
    coalesce(segment, 'unknown') as segment,
    count(*) as returned_lines,
    sum(amount) as returned_amount
from {{ ref('stg_returned_lines') }}
group by all
