select
    l.order_id,
    l.line_no,
    o.customer_id,
    o.order_date,
    o.status,
    l.product_sku,
    l.quantity,
    cast(l.quantity * l.unit_price as decimal(12, 2)) as amount,
    c.segment,
    c.country
from {{ source('orders', 'raw_order_lines') }} as l
join {{ source('orders', 'raw_orders') }} as o using (order_id)
left join {{ source('customers', 'customer_profiles') }} as c using (customer_id)
