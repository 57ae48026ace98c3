"""What a consumer can rely on, stated as assertions over the output ports on disk."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from platform_lib import output_port
from platform_lib.storage import literal, published_dir


def product_ids() -> list[str]:
    """Every product that has an output port folder."""
    root = published_dir()
    return sorted(f"{d.name}.{p.name}" for d in root.iterdir() if d.is_dir() for p in d.iterdir() if p.is_dir())


def read_rows(snapshot_file: Path) -> int:
    with duckdb.connect() as connection:
        return connection.execute(f"SELECT count(*) FROM read_parquet({literal(str(snapshot_file))})").fetchone()[0]


def served() -> dict[str, str]:
    """The version every pointer names, after checking that it is complete and readable."""
    versions = {}
    for product_id in product_ids():
        pointer = output_port.port_dir(product_id) / output_port.POINTER
        snapshot = output_port.Snapshot(**json.loads(pointer.read_text(encoding="utf-8")))
        assert snapshot.product == product_id
        assert read_rows(snapshot.path) == snapshot.rows, f"{pointer} names an incomplete snapshot"
        versions[product_id] = snapshot.version
    return versions


def assert_history_readable() -> None:
    """Every published version still on disk is a complete Parquet file."""
    for product_id in product_ids():
        for version in output_port.versions(product_id):
            snapshot_file = output_port.port_dir(product_id) / version / output_port.SNAPSHOT_FILE
            read_rows(snapshot_file)


def leftovers() -> list[Path]:
    """Temporary files of killed writers that the next run of the product must remove."""
    return sorted(published_dir().glob(f"*/*/{output_port.TEMP_PREFIX}*"))
