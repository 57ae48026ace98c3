"""Ways to spoil a mesh's inputs for real: rewrite a source file, edit a contract."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import duckdb
import yaml

from platform_lib.storage import literal

CUSTOMERS_CSV = "customers/customers.csv"
ORDER_LINES_1 = "orders/order_lines_1.jsonl"
ORDER_LINES_2 = "orders/order_lines_2.jsonl"


def rewrite_csv(sources: Path, select: str) -> None:
    """Replace customers.csv by `select` over its current rows (the table is called `t`)."""
    path = sources / CUSTOMERS_CSV
    with duckdb.connect() as connection:
        connection.execute(f"CREATE TABLE t AS SELECT * FROM read_csv({literal(str(path))}, all_varchar = true)")
        connection.execute(f"COPY ({select}) TO {literal(str(path))} (FORMAT csv, HEADER true)")


def edit_contract(domains: Path, product: str, edit: Callable[[dict], None]) -> None:
    domain, name = product.split(".")
    path = domains / domain / "products" / f"{name}.yaml"
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def column(document: dict, name: str) -> dict:
    return next(c for c in document["columns"] if c["name"] == name)
