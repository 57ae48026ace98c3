WITH Base AS (SELECT * FROM customers.raw_customers)
SELECT customer_id, lower(trim(email)) AS email, upper(country) AS country, coalesce(segment,'consumer') AS segment, signup_date, CAST(current_date - signup_date AS INTEGER) AS tenure_days FROM base
