select
    order_id,
    line_no,
    product_sku,
    quantity,
    cast(quantity * unit_price as decimal(12, 2)) as amount
from {{ source('orders', 'raw_order_lines') }}
