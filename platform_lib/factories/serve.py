"""Serve: publish a checked candidate through the product's output port.

Public products never carry PII in clear: a PII column is hashed (salted SHA-256,
salt from MESH_PII_SALT) or redacted (NULL) as its contract says, redacted if it says
nothing. Internal products stay inside the domain and are published as they are.
"""

from __future__ import annotations

import os

import duckdb

from platform_lib import output_port
from platform_lib.contract import Column, Product
from platform_lib.storage import literal, parquet_file, quote


def _masked(column: Column) -> str:
    if column.mask == "hash":
        salt = literal(os.environ.get("MESH_PII_SALT", ""))
        return f"sha256({salt} || CAST({quote(column.name)} AS VARCHAR)) AS {quote(column.name)}"
    return f"CAST(NULL AS {column.type}) AS {quote(column.name)}"


def unsalted_hashes(product: Product) -> list[str]:
    """The columns `publish` hashes while MESH_PII_SALT is not set: a plain SHA-256 of an
    e-mail address is reversed by hashing a list of addresses."""
    if os.environ.get("MESH_PII_SALT"):
        return []
    return [c.name for c in product.masked_columns if c.mask == "hash"]


def published_select(product: Product, relation: str) -> str:
    """The query whose result is the published snapshot: contract columns, in contract order,
    of the types `Product.served_columns` says."""
    masked = {c.name for c in product.masked_columns}
    columns = [_masked(c) if c.name in masked else quote(c.name) for c in product.columns]
    return f"SELECT {', '.join(columns)} FROM {relation}"


def publish(
    connection: duckdb.DuckDBPyConnection,
    product: Product,
    relation: str,
    run_id: str,
    inputs: dict[str, str],
    source_files: dict[str, str] | None = None,
    failed_warn_checks: list[str] | None = None,
) -> output_port.Snapshot:
    """Publish `relation` as the product's new version, point the domain's view at it, prune
    the versions beyond retention (only now: until the view switched, it read the last one)."""
    snapshot = output_port.publish(
        connection,
        product.id,
        published_select(product, relation),
        contract_version=product.version,
        run_id=run_id,
        inputs=inputs,
        source_files=source_files,
        failed_warn_checks=failed_warn_checks,
    )
    return _served(connection, product, snapshot)


def restore(connection: duckdb.DuckDBPyConnection, product: Product, old: output_port.Snapshot) -> output_port.Snapshot:
    """Serve a retained version's data again (`mesh rollback`), as `publish` serves a new one."""
    return _served(connection, product, output_port.restore(product.id, old))


def _served(connection: duckdb.DuckDBPyConnection, product: Product, snapshot: output_port.Snapshot) -> output_port.Snapshot:
    connection.execute(
        f"CREATE OR REPLACE VIEW main.{quote(product.name)} AS SELECT * FROM {parquet_file(snapshot.path)}"
    )
    output_port.prune(product.id, product.retention.snapshots, product.retention.grace_period)
    return snapshot
