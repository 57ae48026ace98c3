SELECT
    l.order_id,
    l.line_no,
    o.customer_id,
    o.order_date,
    o.status,
    l.product_sku,
    l.quantity,
    CAST(l.quantity * l.unit_price AS DECIMAL(12, 2)) AS amount,
    c.segment,
    c.country
FROM orders.raw_order_lines AS l
JOIN orders.raw_orders AS o USING (order_id)
LEFT JOIN customers.customer_profiles AS c USING (customer_id)
