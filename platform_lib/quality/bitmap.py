"""Prove a key unique with a bitmap instead of a hash table.

Finding duplicates takes a GROUP BY, which builds a hash table of every distinct key:
the most expensive work a quality check does. Most keys are dense integers (ids,
line numbers), and for those DuckDB can do better: each key maps to one bit of a
bitmap (`bitstring_agg`), so the keys are unique exactly when the bits set equal the
rows counted. That is one more aggregate in a scan, with memory of a bit per possible
key. Only a key not proven unique pays for the GROUP BY that names the duplicates.
"""

from __future__ import annotations

import math
from typing import Mapping

import duckdb

from platform_lib.storage import quote

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
"""Types whose values, less their minimum, fit a BIGINT bit position."""
BITS_PER_ROW = 32
"""The bitmap may hold at most this many bits per row of the table (4 bytes a row)."""
MAX_BITS = 1 << 31
"""DuckDB refuses larger bitstrings."""


def distinct_keys(
    connection: duckdb.DuckDBPyConnection, relation: str, columns: Mapping[str, str], rows: int, where: str = "TRUE"
) -> str | None:
    """An aggregate expression: how many distinct keys, with no column null, the rows matching `where` hold.

    `columns` maps the key's column names to their DuckDB types. None when the key is not
    all integers or its range is too sparse for a bitmap; then only a GROUP BY can tell.
    """
    if not columns or any(kind not in INTEGER_TYPES for kind in columns.values()):
        return None
    names = [quote(c) for c in columns]
    bounds = connection.execute(f"SELECT {', '.join(f'min({n}), max({n})' for n in names)} FROM {relation}").fetchone()
    lows, highs = bounds[0::2], bounds[1::2]
    if None in lows:
        return "0"  # a key column null in every row: no row holds a whole key
    spans = [high - low + 1 for low, high in zip(lows, highs)]
    total = math.prod(spans)
    if total > min(MAX_BITS, max(rows, 1) * BITS_PER_ROW):
        return None
    strides = [math.prod(spans[i + 1 :]) for i in range(len(spans))]
    position = " + ".join(f"({name}::BIGINT - {low}) * {stride}" for name, low, stride in zip(names, lows, strides))
    return f"coalesce(bit_count(bitstring_agg({position}, 0, {total - 1}) FILTER (WHERE {where})), 0)"
