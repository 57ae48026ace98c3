select
    l.order_id,
    l.line_no,
    o.customer_id,
    o.order_date,
    o.status,
    l.product_sku,
    l.quantity,
    l.amount,
    c.segment,
    c.country
from {{ ref('stg_order_lines') }} as l
join {{ source('orders', 'raw_orders') }} as o using (order_id)
left join {{ source('customers', 'customer_profiles') }} as c using (customer_id)
