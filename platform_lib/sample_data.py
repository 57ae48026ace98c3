"""The sample mesh's source files, generated deterministically with DuckDB SQL.

Scale 1 is 1,000 customers, 10,000 orders and about 20,000 order lines; rows grow
linearly with the scale. Every value is a function of the row number, so the same
scale always yields the same files. One format per ingest path: customers as CSV,
orders as Parquet, order lines as newline-delimited JSON.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from platform_lib.storage import literal, sources_dir

# The sample mesh's domains under domains/, whose sources these are (orders builds with the
# dbt project dbt_projects/orders). The platform's tests run on these, not on a fork's own.
DOMAINS = ("customers", "orders", "marketing")

SEGMENTS = "['consumer', 'small_business', 'enterprise']"
COUNTRIES = "['NL', 'DE', 'FR', 'ES', 'IT', 'PL', 'SE', 'US', 'GB', 'JP']"
STATUSES = "['placed', 'shipped', 'delivered', 'returned']"
SKUS = 500


def customers_sql(count: int) -> str:
    return f"""
        SELECT i AS customer_id,
               'customer' || i || '@example.' || (['com', 'org', 'net'])[1 + i % 3] AS email,
               'Customer ' || i AS full_name,
               ({COUNTRIES})[1 + CAST(hash(i, 'country') % 10 AS BIGINT)] AS country,
               DATE '2020-01-01' + CAST(hash(i, 'signup') % 1800 AS INTEGER) AS signup_date,
               ({SEGMENTS})[1 + CAST(hash(i, 'segment') % 3 AS BIGINT)] AS segment
        FROM range(1, {count} + 1) t(i)"""


def orders_sql(count: int, customers: int) -> str:
    return f"""
        SELECT i AS order_id,
               1 + CAST(hash(i, 'customer') % {customers} AS BIGINT) AS customer_id,
               DATE '2024-01-01' + CAST(hash(i, 'date') % 700 AS INTEGER) AS order_date,
               ({STATUSES})[1 + CAST(hash(i, 'status') % 4 AS BIGINT)] AS status
        FROM range(1, {count} + 1) t(i)"""


def order_lines_sql(orders: int) -> str:
    return f"""
        SELECT o AS order_id, CAST(n AS INTEGER) AS line_no,
               'SKU-' || lpad(CAST(1 + CAST(hash(o, n, 'sku') % {SKUS} AS BIGINT) AS VARCHAR), 4, '0') AS product_sku,
               CAST(1 + hash(o, n, 'qty') % 5 AS INTEGER) AS quantity,
               CAST((100 + CAST(hash(o, n, 'price') % 20000 AS BIGINT)) / 100.0 AS DECIMAL(10, 2)) AS unit_price
        FROM range(1, {orders} + 1) t(o), range(1, 2 + CAST(hash(o, 'lines') % 3 AS INTEGER)) s(n)"""


def generate(scale: float = 1.0, target: Path | None = None) -> Path:
    """Write the sample source files under `target` (default: the mesh's source folder)."""
    root = target or sources_dir()
    customers, orders = max(1, int(1_000 * scale)), max(1, int(10_000 * scale))
    half = orders // 2
    files = {
        "customers/customers.csv": (customers_sql(customers), "FORMAT csv, HEADER true"),
        "orders/orders_1.parquet": (f"SELECT * FROM ({orders_sql(orders, customers)}) WHERE order_id <= {half}", "FORMAT parquet"),
        "orders/orders_2.parquet": (f"SELECT * FROM ({orders_sql(orders, customers)}) WHERE order_id > {half}", "FORMAT parquet"),
        "orders/order_lines_1.jsonl": (f"SELECT * FROM ({order_lines_sql(orders)}) WHERE order_id <= {half} ORDER BY order_id, line_no", "FORMAT json"),
        "orders/order_lines_2.jsonl": (f"SELECT * FROM ({order_lines_sql(orders)}) WHERE order_id > {half} ORDER BY order_id, line_no", "FORMAT json"),
    }
    with duckdb.connect() as connection:
        for relative, (query, options) in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            order = "" if "ORDER BY" in query else " ORDER BY 1"
            connection.execute(f"COPY ({query}{order}) TO {literal(str(temporary))} ({options})")
            temporary.replace(path)
    return root
