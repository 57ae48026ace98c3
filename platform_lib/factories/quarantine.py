"""The quarantine: the rows of a source that do not convert to the contract's types,
kept with their file, line and reason in `_quarantine.<product>` of the domain's file
(`QUARANTINE_SCHEMA`), and the row-by-row read that sorts them from the good ones.

A reader takes a source in one pass when it can (`read_strictly`); only a source with a
bad value is read again row by row (`split_rows`), each value cast with TRY_CAST, so that
a bad row costs its own place in the quarantine and not the whole read.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from platform_lib.contract import Column, Product
from platform_lib.storage import QUARANTINE_SCHEMA, cast, column_types, create_candidate, is_number_type, literal, quote, relation_kind

QUARANTINE_COLUMNS = "file VARCHAR, line BIGINT, column_name VARCHAR, error VARCHAR, raw VARCHAR"


def table(product: Product) -> str:
    """The product's quarantine table, as SQL."""
    return f"{QUARANTINE_SCHEMA}.{quote(product.name)}"


@contextlib.contextmanager
def replaced(connection: duckdb.DuckDBPyConnection, product: Product) -> Iterator[None]:
    """A new quarantine table for a read, and the last one back if the read fails: `mesh
    quarantine` goes on listing the rows the served version was read without."""
    previous = f"{product.name}-previous"  # a hyphen: no product's name
    had = relation_kind(connection, QUARANTINE_SCHEMA, product.name) == "TABLE"
    if had:
        connection.execute(f"DROP TABLE IF EXISTS {QUARANTINE_SCHEMA}.{quote(previous)}")
        connection.execute(f"ALTER TABLE {table(product)} RENAME TO {quote(previous)}")
    connection.execute(f"CREATE TABLE {table(product)} ({QUARANTINE_COLUMNS})")
    try:
        yield
    except BaseException:
        if had:
            connection.execute(f"DROP TABLE {table(product)}")
            connection.execute(f"ALTER TABLE {QUARANTINE_SCHEMA}.{quote(previous)} RENAME TO {quote(product.name)}")
        raise
    if had:
        connection.execute(f"DROP TABLE {QUARANTINE_SCHEMA}.{quote(previous)}")


def quarantined(connection: duckdb.DuckDBPyConnection, product: Product, limit: int) -> tuple[int, list[tuple]] | None:
    """The number of rows the product's last ingest quarantined and the first `limit` of
    them (file, line, column, error, raw), in file and line order; None before its first."""
    if relation_kind(connection, QUARANTINE_SCHEMA, product.name) is None:
        return None
    total = connection.execute(f"SELECT count(*) FROM {table(product)}").fetchone()[0]
    rows = connection.execute(f"SELECT * FROM {table(product)} ORDER BY file, line LIMIT {int(limit)}").fetchall()
    return total, rows


@dataclass(frozen=True)
class OnePassElseByRows:
    """A format DuckDB's reader takes in one pass, read again row by row (`split_rows`) only
    when a value does not convert, so that the bad rows are quarantined with their lines."""

    one_pass: Callable[[Product, list[Path]], str]
    """The reader of the files, its values of the contract's columns as they come."""
    by_rows: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], None]

    def __call__(self, connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
        if not read_strictly(connection, product, self.one_pass(product, files)):
            self.by_rows(connection, product, files)


def read_strictly(connection: duckdb.DuckDBPyConnection, product: Product, reader: str) -> bool:
    """The candidate in one read by `reader`; False at its first value that does not convert.

    Values are cast from their text, as the row-by-row read casts them (so JSON `true`
    is not the integer 1): both reads agree on every source this one accepts. A Parquet
    column already of the contract's type is taken as it is: its text casts back to the
    same value, so the round trip would only cost time.
    """
    try:
        read_as = column_types(connection, reader)
        select = ", ".join(
            quote(c.name) if read_as.get(c.name) == c.type else f"{cast(f'{quote(c.name)}::VARCHAR', c, strict=True)} AS {quote(c.name)}"
            for c in product.columns
        )
        create_candidate(connection, product.name, f"SELECT {select} FROM {reader}")
    except duckdb.Error:
        return False
    return True


def _others(product: Product, read_as: dict[str, str]) -> list[str]:
    """The columns a reader gives that the contract does not have (only CSV keeps them: the schema check reports them)."""
    return [name for name in read_as if name not in product.column_types and name != "mesh_source_file"]


def rows_of(product: Product, reader: str, line: str, read_as: dict[str, str]) -> str:
    """`split_rows`'s relation from a reader of typed rows with a `mesh_source_file` column."""
    fields = ", ".join(f"{quote(c.name)} := {quote(c.name)}::VARCHAR" for c in product.columns if c.name in read_as)
    others = ", ".join(f"{quote(name)} := {quote(name)}" for name in _others(product, read_as))
    return f"""
        SELECT mesh_source_file AS file, {line} AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS unreadable,
            struct_pack({fields}) AS fields{f", struct_pack({others}) AS others" if others else ""}
        FROM {reader}"""


def split_rows(
    connection: duckdb.DuckDBPyConnection, product: Product, relation: str, read_as: dict[str, str],
    number_text: Callable[[Column, str], str] | None = None,
) -> None:
    """The rows of `relation` whose every value converts become the candidate; the others go
    to the quarantine, naming the first column that does not.

    `relation` has the columns file, line, raw (the row as text, JSON only), unreadable
    (why a JSON line is no row, else NULL), `fields`: a struct of one VARCHAR per contract
    column the source has, and, for a CSV source with columns its contract does not
    have, `others`: a struct of those. Values travel in structs so that a column named
    `file` or `line` keeps its own values. `number_text` turns the text of a number the
    reader gave as VARCHAR (`read_as`) into text SQL casts read (CSV's separators).
    """
    connection.execute(f"CREATE OR REPLACE TEMP TABLE mesh_raw AS {relation}")
    columns = [c for c in product.columns if c.name in read_as]
    texts = {c.name: f"fields.{quote(c.name)}" for c in columns}
    numbers = {c.name: number_text(c, texts[c.name]) if number_text and is_number_type(c.type) and read_as[c.name] == "VARCHAR" else texts[c.name] for c in columns}
    casts = {c.name: cast(numbers[c.name], c, strict=False) for c in columns}
    failed = " OR ".join(f"({texts[name]} IS NOT NULL AND {value} IS NULL)" for name, value in casts.items())
    first_failed = " ".join(
        f"WHEN {texts[name]} IS NOT NULL AND {value} IS NULL THEN {literal(name)}" for name, value in casts.items()
    )
    connection.execute(
        f"""INSERT INTO {table(product)}
        SELECT file, line,
            CASE WHEN unreadable IS NULL THEN CASE {first_failed} END END,
            coalesce(unreadable, 'value does not convert to the contract type'),
            coalesce(raw, {" || ', ' || ".join(f"coalesce({text}, 'NULL')" for text in texts.values())})
        FROM mesh_raw WHERE unreadable IS NOT NULL OR {failed}
        ORDER BY file, line"""
    )
    selected = ", ".join([f"{value} AS {quote(name)}" for name, value in casts.items()] + (["others.*"] if _others(product, read_as) else []))
    create_candidate(connection, product.name, f"SELECT {selected} FROM mesh_raw WHERE unreadable IS NULL AND NOT ({failed})")
    connection.execute("DROP TABLE mesh_raw")
