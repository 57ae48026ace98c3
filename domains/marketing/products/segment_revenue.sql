SELECT
    segment,
    count(*) AS customers,
    sum(revenue) AS revenue,
    CAST(sum(revenue) / count(*) AS DECIMAL(14, 2)) AS revenue_per_customer
FROM marketing.customer_lifetime_value
GROUP BY segment
