"""Seeded test data and rules for comparing the DuckDB compiler with Great Expectations.

The value pools hold the awkward cases on purpose: nulls, NaN, signed zero, values
on the rule boundaries, duplicates, unicode (composed and decomposed), mixed case and
empty strings. Each dataset draws rows from them with its own seed.
"""

from __future__ import annotations

import math
import random
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb

from platform_lib.contract import QualityRule

COLUMNS = {"i": "BIGINT", "j": "BIGINT", "x": "DOUBLE", "m": "DECIMAL(12,2)", "s": "VARCHAR", "d": "DATE", "e": "DATE"}
POOLS: dict[str, list[Any]] = {
    "i": [None, 0, 1, -1, 2, 5, 9, 10, 11, 100, -100, 2**40],
    "j": [None, 0, 1, 2, 3, 10, -5],
    "x": [None, math.nan, 0.0, -0.0, 0.5, 1.0, 9.999, 10.0, 10.5, -3.25, 1e9],
    "m": [None, Decimal("0.00"), Decimal("0.01"), Decimal("10.00"), Decimal("-2.50"), Decimal("99999.99")],
    "d": [None, date(2024, 1, 1), date(2024, 2, 29), date(1970, 1, 1), date(2030, 12, 31)],
    "e": [None, date(2024, 1, 1), date(2023, 12, 31), date(2024, 3, 1)],
    "s": [None, "", "a", "A", "abc", "ABC", "Abc", "é", "e\u0301", "naïve", "日本語", "ß", "x y", "a@b.c", "123", "Zürich", "٣", "a_1", "x\u0301y", "abc\n", "ab\nc"],
}
MISSING = (None, math.nan)


def _rows(seed: int) -> list[tuple[Any, ...]]:
    """Rows drawn from the pools; some seeds leave out missing values, some draw from few values."""
    rng = random.Random(seed)
    pools = {}
    for name, pool in POOLS.items():
        values = [v for v in pool if not (rng.random() < 0.3 and (v is None or v != v))]
        pools[name] = rng.sample(values, k=max(1, len(values) // rng.choice([1, 1, 3])))
    return [tuple(rng.choice(pools[name]) for name in COLUMNS) for _ in range(rng.randint(1, 40))]


def datasets() -> dict[str, list[tuple[Any, ...]]]:
    fixed = {
        "empty": [],
        "one_null_row": [(None,) * len(COLUMNS)],
        "nan_only": [(None, None, math.nan, None, None, None, None)] * 3,
        "all_equal": [(5, 5, 1.0, Decimal("1.00"), "a", date(2024, 1, 1), date(2024, 1, 1))] * 4,
    }
    return fixed | {f"seed{seed}": _rows(seed) for seed in range(14)}


def load(connection: duckdb.DuckDBPyConnection, name: str, rows: list[tuple[Any, ...]]) -> str:
    columns = ", ".join(f"{column} {kind}" for column, kind in COLUMNS.items())
    connection.execute(f"CREATE OR REPLACE TABLE {name} ({columns})")
    if rows:
        connection.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    return name


def _rule(expect: str, **kwargs: Any) -> QualityRule:
    return QualityRule(expect=f"expect_{expect}", **kwargs)


def rules() -> list[QualityRule]:
    """Several rules per compiled expectation, varied over columns, bounds, strictness and `mostly`."""
    found = []
    for column in ("i", "x", "m", "s"):
        found += [_rule("column_values_to_not_be_null", column=column), _rule("column_values_to_not_be_null", column=column, mostly=0.6)]
        found += [_rule("column_values_to_be_null", column=column), _rule("column_values_to_be_null", column=column, mostly=0.3)]
        found += [_rule("column_values_to_be_unique", column=column), _rule("column_values_to_be_unique", column=column, mostly=0.5)]
        found.append(_rule("column_unique_value_count_to_be_between", column=column, min_value=0))
        found.append(_rule("column_proportion_of_unique_values_to_be_between", column=column, min_value=0.5, max_value=1))
    for column in ("i", "x", "m"):
        found += [
            _rule("column_values_to_be_between", column=column, min_value=0, max_value=10),
            _rule("column_values_to_be_between", column=column, min_value=0, max_value=10, strict_min=True, strict_max=True, mostly=0.5),
            _rule("column_values_to_be_between", column=column, max_value=1),
            _rule("column_values_to_be_in_set", column=column, value_set=[0, 1, 10, "10"]),
            _rule("column_values_to_not_be_in_set", column=column, value_set=[0, 2.5, -1], mostly=0.8),
            _rule("column_min_to_be_between", column=column, min_value=0),
            _rule("column_max_to_be_between", column=column, max_value=10, strict_max=True),
            _rule("column_mean_to_be_between", column=column, min_value=0, max_value=10),
            _rule("column_median_to_be_between", column=column, min_value=1),
            _rule("column_sum_to_be_between", column=column, min_value=0, max_value=100),
            _rule("column_stdev_to_be_between", column=column, max_value=5),
            _rule("column_unique_value_count_to_be_between", column=column, min_value=2, max_value=4, strict_max=True),
            _rule("column_distinct_values_to_be_in_set", column=column, value_set=[0, 1, 5, 10]),
            _rule("column_distinct_values_to_contain_set", column=column, value_set=[0, 1]),
            _rule("column_distinct_values_to_equal_set", column=column, value_set=[5, 1]),
        ]
    found += [
        _rule("column_values_to_be_in_set", column="s", value_set=["a", "abc", "é", 1]),
        _rule("column_values_to_be_in_set", column="s", value_set=[]),
        _rule("column_values_to_not_be_in_set", column="s", value_set=["A", "ABC", ""], mostly=0.7),
        _rule("column_values_to_match_regex", column="s", regex="^[a-z]+$"),
        _rule("column_values_to_match_regex", column="s", regex="(?i)^a", mostly=0.4),
        _rule("column_values_to_match_regex", column="s", regex="é|ü"),
        _rule("column_values_to_match_regex", column="s"),
        _rule("column_values_to_not_match_regex", column="s", regex="[A-Z]"),
        _rule("column_values_to_match_regex", column="s", regex=r"^\d+$"),
        _rule("column_values_to_match_regex", column="s", regex=r"^[\w]+$"),
        _rule("column_values_to_not_match_regex", column="s", regex=r"\W"),
        _rule("column_values_to_match_regex", column="s", regex=r"[^\d\]a]"),
        _rule("column_values_to_match_regex", column="s", regex="(?m)^c$"),
        _rule("column_values_to_not_match_regex", column="s", regex="c$|[$]"),
        _rule("column_values_to_not_match_regex", column="s", regex="^$"),
        _rule("column_value_lengths_to_be_between", column="s", min_value=1, max_value=3),
        _rule("column_value_lengths_to_be_between", column="s", min_value=1, max_value=3, strict_min=True, mostly=0.5),
        _rule("column_value_lengths_to_equal", column="s", value=3),
        _rule("column_distinct_values_to_be_in_set", column="s", value_set=["a", "A", "é"]),
        _rule("column_distinct_values_to_contain_set", column="s", value_set=["a", "日本語"]),
        _rule("column_distinct_values_to_equal_set", column="s", value_set=["a"]),
        _rule("table_row_count_to_be_between", min_value=1, max_value=30),
        _rule("table_row_count_to_be_between", min_value=0, strict_min=True),
        _rule("table_row_count_to_equal", value=0),
        _rule("table_columns_to_match_ordered_list", column_list=list(COLUMNS)),
        _rule("table_columns_to_match_ordered_list", column_list=["i", "x"]),
        _rule("table_columns_to_match_set", column_set=["s", "i", "j", "x", "m"]),
        _rule("table_columns_to_match_set", column_set=["s", "i"], exact_match=False),
        _rule("table_columns_to_match_set", column_set=["s", "nope"], exact_match=False),
        _rule("compound_columns_to_be_unique", column_list=["i", "s"]),
        _rule("compound_columns_to_be_unique", column_list=["i", "x"], ignore_row_if="any_value_is_missing", mostly=0.5),
        _rule("compound_columns_to_be_unique", column_list=["j", "s"], ignore_row_if="never"),
        # Integer keys: counted in a bitmap unless 2**40 makes i's range too sparse for one.
        _rule("compound_columns_to_be_unique", column_list=["j", "i"]),
        _rule("compound_columns_to_be_unique", column_list=["i", "j"], ignore_row_if="never", mostly=0.5),
        _rule("column_pair_values_a_to_be_greater_than_b", column_A="i", column_B="j"),
        _rule("column_pair_values_a_to_be_greater_than_b", column_A="i", column_B="j", or_equal=True, mostly=0.5),
        _rule("column_pair_values_a_to_be_greater_than_b", column_A="x", column_B="j", ignore_row_if="either_value_is_missing"),
        _rule("column_pair_values_a_to_be_greater_than_b", column_A="x", column_B="i", ignore_row_if="neither"),
        # No date bounds: GE 1.24 on pandas 3 raises comparing Timestamps with the dates it parses them into.
        _rule("column_values_to_be_unique", column="d"),
        _rule("column_unique_value_count_to_be_between", column="d", min_value=2),
        _rule("column_pair_values_a_to_be_greater_than_b", column_A="d", column_B="e", or_equal=True),
        _rule("compound_columns_to_be_unique", column_list=["d", "e"]),
        _rule("multicolumn_sum_to_equal", column_list=["i", "j"], sum_total=10),
        _rule("multicolumn_sum_to_equal", column_list=["i", "j", "x"], sum_total=2, ignore_row_if="any_value_is_missing"),
        _rule("multicolumn_sum_to_equal", column_list=["j", "m"], sum_total=0, ignore_row_if="never", mostly=0.3),
    ]
    return found
