select order_id, line_no, order_date, segment, amount
from {{ source('shop', 'order_lines') }}
where status = 'returned'
