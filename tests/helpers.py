"""Small helpers the integration tests share: load the sample mesh, spoil a source file, read a port."""

from __future__ import annotations

from pathlib import Path

import duckdb

from platform_lib import output_port
from platform_lib.materialize import materialize_products
from platform_lib.outcomes import Outcome
from platform_lib.mesh import load_mesh


def products(*domains: str):
    """The sample products of `domains` (all when none given), loaded from $MESH_DOMAINS_DIR."""
    selected = [d for d in load_mesh() if not domains or d.path.name in domains]
    for domain in selected:
        if domain.error:
            raise domain.error
    return [p for d in selected for p in d.products]


def run(*domains: str, instance=None) -> dict[str, Outcome]:
    return {o.product: o for o in materialize_products(products(*domains), instance=instance)}


def add_csv_row(mesh_dir: Path, line: str) -> None:
    """Append a raw line to the customers CSV, the way a bad export would."""
    with open(mesh_dir / "sources" / "customers" / "customers.csv", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read_published(product_id: str) -> list[tuple]:
    """All rows of a product's current snapshot, sorted, as a consumer reads them."""
    snapshot = output_port.current(product_id)
    assert snapshot is not None, f"{product_id} was never published"
    with duckdb.connect() as connection:
        return sorted(connection.execute(f"SELECT * FROM read_parquet('{snapshot.path}')").fetchall(), key=repr)
