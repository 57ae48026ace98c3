"""Parquet sources: DuckDB's Parquet reader in one pass; a source with a value that does not
convert is read again row by row, with the rows' numbers in their files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from platform_lib.contract import Product
from platform_lib.factories import quarantine
from platform_lib.factories.source_files import files_literal
from platform_lib.storage import FILES_ONLY, column_types, parquet_file


def one_pass(product: Product, files: list[Path]) -> str:
    """DuckDB's reader of the files, its columns of their own types (`quarantine.read_strictly` casts those of others)."""
    return f"read_parquet({files_literal(files)}, union_by_name = true, {FILES_ONLY})"


def by_rows(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """Row by row, with the rows' numbers in their files."""
    reader = f"read_parquet({files_literal(files)}, filename = 'mesh_source_file', file_row_number = true, union_by_name = true, {FILES_ONLY})"
    quarantine.split_rows(connection, product, quarantine.rows_of(product, reader, "file_row_number + 1", product.column_types), product.column_types)


def fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """From each file's footer, spelled as the contract spells them: the reader matches names without case, as DuckDB does."""
    ours = {name.lower(): name for name in product.column_types}
    return {f: tuple(ours.get(n.lower(), n) for n in column_types(connection, parquet_file(f))) for f in files}
