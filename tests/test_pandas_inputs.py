"""A pandas transform's inputs are the frames DuckDB's `.df()` would give, fetched faster:
same columns, order, dtypes and values, NULLs included, for every kind of column."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from platform_lib.storage import data_frame

COLUMNS = {  # column -> a SQL expression of row number i; every third row NULL
    "id": "i::BIGINT",
    "name": "'name ' || i",
    "small": "i::SMALLINT",
    "flag": "i % 2 = 0",
    "ratio": "i / 7",
    "price": "(i * 1.25)::DECIMAL(12, 2)",
    "huge": "i::HUGEINT * 1000000000000",
    "day": "DATE '2026-01-01' + i::INTEGER",
    "moment": "TIMESTAMP '2026-01-01 08:00:00' + to_seconds(i)",
    "moment_tz": "TIMESTAMPTZ '2026-01-01 08:00:00+00' + to_seconds(i)",
    "clock": "TIME '08:00:00' + to_seconds(i)",
    "span": "to_days(i::INTEGER)",
    "uuid": "uuid()",
    "bytes": "('x' || i)::BLOB",
    "tags": "['a', 'b' || i]",
    "pair": "{'k': i, 'v': 'v' || i}",
    "mood": "(['sad', 'ok', 'happy'])[i % 3 + 1]::ENUM ('sad', 'ok', 'happy')",
    "emoji": "'✓ ' || i",
}


@pytest.fixture
def connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    select = ", ".join(f"CASE WHEN i % 3 = 0 THEN NULL ELSE {sql} END AS {name}" for name, sql in COLUMNS.items())
    connection.execute(f"CREATE TABLE sample AS SELECT {select} FROM range(1, 5000) AS r(i)")
    return connection


@pytest.mark.parametrize("columns", [list(COLUMNS), ["name", "emoji"], ["id", "day"], ["emoji", "id", "name", "price"]])
def test_inputs_are_the_frames_duckdb_gives(connection, columns):
    connection.execute(f"CREATE VIEW chosen AS SELECT {', '.join(columns)} FROM sample")
    expected = connection.sql("SELECT * FROM chosen").df()
    got = data_frame(connection, "chosen")
    assert list(got.columns) == columns
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_an_input_read_from_parquet_keeps_its_row_order(connection, tmp_path):
    """Text and other columns come from two queries: their rows must line up over a multi-file port."""
    for part, rows in enumerate(["id % 2 = 0", "id % 2 = 1", "id IS NULL"]):
        connection.execute(f"COPY (SELECT id, name FROM sample WHERE {rows} ORDER BY random()) "
                           f"TO '{tmp_path / f'part{part}.parquet'}' (FORMAT parquet, ROW_GROUP_SIZE 100)")
    relation = f"read_parquet('{tmp_path / '*.parquet'}')"
    got = data_frame(connection, relation)
    expected = connection.sql(f"SELECT * FROM {relation}").df()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert (got["name"].dropna() == "name " + got["id"].dropna().astype("int64").astype(str)).all()


def test_an_input_whose_rows_come_in_no_fixed_order_stays_whole(connection):
    """A view over a parallel aggregate returns its groups in a different order each time:
    every row must still hold its own text and numbers."""
    connection.execute("SET threads = 4")
    connection.execute("CREATE VIEW grouped AS SELECT i % 200000 AS id, 'name ' || (i % 200000) AS name, "
                       "count(*) AS n FROM range(2000000) AS r(i) GROUP BY ALL")
    got = data_frame(connection, "grouped")
    assert len(got) == 200000
    assert (got["name"] == "name " + got["id"].astype(str)).all()
