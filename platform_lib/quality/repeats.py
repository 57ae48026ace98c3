"""Whether a column's values repeat enough to test each distinct value once.

A regular expression costs far more per row than looking a value up in a hash table.
When a column holds few distinct values (statuses, SKUs, the emails of returning
buyers), grouping equal values first and testing each group once is several times
faster; when nearly every value is new, grouping only adds its hash table. A small
system sample (whole vectors, so nearly free) and the Chao1 estimator of the number
of distinct values tell the two apart. Either way the answer is the same: only its
cost depends on the guess.
"""

from __future__ import annotations

import duckdb

SAMPLED_ROWS = 131_072
"""About this many rows (64 of DuckDB's vectors) are sampled."""
MIN_ROWS = 4 * SAMPLED_ROWS
"""Smaller tables are tested row by row: they are cheap, and a sample would be most of them."""
ROWS_PER_DISTINCT = 10
"""Group when each distinct value is estimated to stand for at least this many rows."""


def values_repeat(connection: duckdb.DuckDBPyConnection, relation: str, expression: str, rows: int) -> bool:
    """True when `expression` over `relation` is estimated to hold at most rows / ROWS_PER_DISTINCT distinct values."""
    if rows < MIN_ROWS:
        return False
    percent = 100 * SAMPLED_ROWS / rows
    seen, once, twice = connection.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n = 2)
        FROM (SELECT v, count(*) AS n FROM (SELECT {expression} AS v FROM {relation} USING SAMPLE {percent:.6f}% (system)) GROUP BY v)"""
    ).fetchone()
    estimated = seen + once * (once - 1) / (2 * (twice + 1))  # bias-corrected Chao1
    return estimated * ROWS_PER_DISTINCT <= rows
