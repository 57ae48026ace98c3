"""How the engine runs rules: one scan for the compiled ones, GE only for the rest, and
the cheaper plans it picks by the data (uniqueness in hash partitions or a bitmap, a
regex once per distinct value) without changing any answer."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import pytest

from platform_lib.contract import QualityRule
from platform_lib.quality import compiler, evaluate_rules, repeats
from tests.quality.differential import COLUMNS, datasets, load, rules

UNIQUENESS = [
    QualityRule(expect="expect_column_values_to_be_unique", column=column) for column in ("i", "x", "s")
] + [
    QualityRule(expect="expect_compound_columns_to_be_unique", column_list=["i", "s"]),
    QualityRule(expect="expect_compound_columns_to_be_unique", column_list=["j", "x"], ignore_row_if="never"),
]


@pytest.mark.parametrize("name", ["seed1", "seed4", "seed7", "all_equal"])
def test_partitioned_uniqueness_gives_the_same_answers(name, monkeypatch):
    connection = duckdb.connect()
    table = load(connection, name, datasets()[name])
    whole = evaluate_rules(connection, table, UNIQUENESS)
    monkeypatch.setattr(compiler, "ROWS_PER_PARTITION", 3)
    partitioned = evaluate_rules(connection, table, UNIQUENESS)
    assert any(r.unexpected_count for r in whole), "the data should hold duplicates"
    for one, other in zip(whole, partitioned):
        assert (one.success, one.unexpected_count, sorted(map(repr, one.partial_unexpected_list))) == (
            other.success, other.unexpected_count, sorted(map(repr, other.partial_unexpected_list)),
        )  # fmt: skip


@pytest.mark.parametrize("name", ["seed1", "seed4", "seed7", "all_equal"])
def test_a_regex_tested_once_per_distinct_value_gives_the_same_answers(name, monkeypatch):
    connection = duckdb.connect()
    table = load(connection, name, datasets()[name])
    regex_rules = [rule for rule in rules() if rule.expect in compiler.COSTLY_TESTS]
    by_row = evaluate_rules(connection, table, regex_rules)
    monkeypatch.setattr(repeats, "values_repeat", lambda *args: True)
    by_value = evaluate_rules(connection, table, regex_rules)
    assert any(r.unexpected_count for r in by_row), "some rule should fail on this data"
    for one, other in zip(by_row, by_value):
        assert (one.success, one.element_count, one.unexpected_count, one.unexpected_percent, one.partial_unexpected_list) == (
            other.success, other.element_count, other.unexpected_count, other.unexpected_percent, other.partial_unexpected_list,
        ), one.rule  # fmt: skip


def test_values_repeat_tells_few_distinct_values_from_new_ones():
    connection = duckdb.connect()
    rows = repeats.MIN_ROWS + 1000
    connection.execute(
        f"CREATE TABLE t AS SELECT 'buyer' || (i % 20000) || '@example.com' AS buyer, 'order-' || i AS order_ref FROM range({rows}) r(i)"
    )
    assert repeats.values_repeat(connection, "t", "buyer", rows)
    assert not repeats.values_repeat(connection, "t", "order_ref", rows)
    connection.execute(f"DELETE FROM t WHERE rowid >= {repeats.MIN_ROWS - 1}")
    assert not repeats.values_repeat(connection, "t", "buyer", repeats.MIN_ROWS - 1), "a small table is tested row by row"


def test_compiled_rules_share_one_scan(monkeypatch):
    """Every compiled rule adds to one aggregate query; examples are fetched for failing rules only."""
    connection = duckdb.connect()
    table = load(connection, "seed2", datasets()["seed2"])
    statements = []
    original = duckdb.DuckDBPyConnection.execute

    class Recording:
        def __getattr__(self, name):
            return getattr(connection, name)

        def execute(self, sql, *args):
            statements.append(sql)
            return original(connection, sql, *args)

    rules = [
        QualityRule(expect="expect_column_values_to_be_between", column="i", min_value=-1000, max_value=2**41),
        QualityRule(expect="expect_column_values_to_match_regex", column="s", regex="^[a-z]+$"),
        QualityRule(expect="expect_column_mean_to_be_between", column="x", min_value=0),
        QualityRule(expect="expect_table_row_count_to_be_between", min_value=1),
    ]
    results = evaluate_rules(Recording(), table, rules)
    scans = [s for s in statements if s.startswith("SELECT") and s != f"SELECT count(*) FROM {table}"]
    failing = [r for r in results if r.unexpected_count]
    assert {r.engine for r in results} == {"duckdb"}
    assert len([s for s in scans if "LIMIT" not in s]) == 1
    assert len([s for s in scans if "LIMIT" in s]) == len(failing)


def test_only_uncompiled_rules_go_to_great_expectations():
    script = (
        "import sys, duckdb\n"
        "from platform_lib.contract import QualityRule\n"
        "from platform_lib.quality import evaluate_rules\n"
        "c = duckdb.connect(); c.execute('CREATE TABLE t AS SELECT range AS n FROM range(5)')\n"
        "compiled = [QualityRule(expect='expect_column_values_to_be_unique', column='n')]\n"
        "results = evaluate_rules(c, 't', compiled)\n"
        "print(results[0].engine, 'great_expectations' in sys.modules)\n"
        "results = evaluate_rules(c, 't', compiled + [QualityRule(expect='expect_column_values_to_be_increasing', column='n')])\n"
        "print(*[r.engine for r in results], all(r.success for r in results))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "duckdb False"
    assert out[1] == "duckdb great_expectations True"


def test_rules_duckdb_cannot_compare_run_in_great_expectations_and_fail_there():
    connection = duckdb.connect()
    table = load(connection, "seed3", datasets()["seed3"])
    rules = [
        QualityRule(expect="expect_column_values_to_be_between", column="i", min_value="2024-01-01"),
        QualityRule(expect="expect_column_pair_values_a_to_be_greater_than_b", column_A="s", column_B="i"),
        QualityRule(expect="expect_column_values_to_be_between", column="i", min_value=0),
    ]
    results = evaluate_rules(connection, table, rules)
    assert [r.engine for r in results] == ["great_expectations", "great_expectations", "duckdb"]
    assert [r.success for r in results[:2]] == [False, False]


def test_a_row_condition_filters_rows_in_great_expectations_and_a_failing_one_says_why():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (NULL, 'b')) v(n, s)")

    def rule(condition: str) -> QualityRule:
        return QualityRule(expect="expect_column_values_to_not_be_null", column="n", row_condition=condition, condition_parser="pandas")

    kept, broken = evaluate_rules(connection, "t", [rule('s == "a"'), rule("s.str.no_such_method()")])
    assert (kept.engine, kept.success, kept.element_count) == ("great_expectations", True, 1)
    assert not broken.success
    assert "could not compute it" in broken.summary and "no_such_method" in broken.summary


@pytest.mark.parametrize(
    ("column", "type_", "success"),
    [("i", "BIGINT", True), ("i", "int8", True), ("i", "INTEGER", False), ("m", "DECIMAL(12,2)", True), ("m", "DECIMAL(12,3)", False),
     ("s", "text", True), ("x", "DOUBLE", True), ("x", "no such type", False)],
)  # fmt: skip
def test_of_type_compares_the_duckdb_column_type(column, type_, success):
    """GE compares a SQL column's declared type, not its values; DuckDB's spellings are accepted."""
    connection = duckdb.connect()
    table = load(connection, "seed5", datasets()["seed5"])
    (result,) = evaluate_rules(connection, table, [QualityRule(expect="expect_column_values_to_be_of_type", column=column, type_=type_)])
    assert (result.engine, result.success, result.observed_value) == ("duckdb", success, connection.execute(
        f"SELECT column_type FROM (DESCRIBE {table}) WHERE column_name = '{column}'").fetchone()[0])


@pytest.mark.parametrize("name", ["seed0", "seed6", "one_null_row"])
def test_date_bounds_compare_as_dates(name):
    """GE on pandas 3 cannot check date bounds (it raises), so Python's own date comparison is the oracle."""
    rows = datasets()[name]
    dates = [row[list(COLUMNS).index("d")] for row in rows if row[list(COLUMNS).index("d")] is not None]
    low, high = date(2024, 1, 1), date(2024, 12, 31)
    connection = duckdb.connect()
    table = load(connection, name, rows)
    between, minimum = evaluate_rules(connection, table, [
        QualityRule(expect="expect_column_values_to_be_between", column="d", min_value="2024-01-01", max_value="2024-12-31", strict_min=True),
        QualityRule(expect="expect_column_min_to_be_between", column="d", min_value="2000-01-01"),
    ])  # fmt: skip
    assert between.unexpected_count == sum(not low < d <= high for d in dates)
    assert minimum.observed_value == (min(dates) if dates else None)
    assert minimum.success == (bool(dates) and min(dates) >= date(2000, 1, 1))


@pytest.mark.parametrize(
    "column_type, bound",
    [
        ("TIMESTAMP", date(2024, 1, 1)),  # YAML reads `2024-01-01` as a date
        ("TIMESTAMP", "2024-01-01"),
        ("DATE", "2024-01-01T00:00:00"),
        ("DATE", "2024-06-01T00:00:00"),
        ("TIMESTAMP", "2024-01-01T12:00:00"),
        ("TIMESTAMPTZ", "2024-01-01"),
        ("TIMESTAMPTZ", "2024-01-01T10:00:00+02:00"),
    ],
)
def test_a_statistic_of_dates_or_moments_compares_with_any_date_or_moment_bound(column_type, bound):
    """DuckDB's own comparison of the column's min and max with the bound is the oracle."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"CREATE TABLE t AS SELECT CAST(v AS {column_type}) AS v FROM (VALUES ('2024-01-01 10:00:00'), ('2024-03-01 00:00:00')) AS s(v)")
    minimum, maximum = evaluate_rules(connection, "t", [
        QualityRule(expect="expect_column_min_to_be_between", column="v", min_value=bound),
        QualityRule(expect="expect_column_max_to_be_between", column="v", max_value=bound),
    ])  # fmt: skip
    literal = f"CAST('{bound}' AS {'TIMESTAMPTZ' if column_type == 'TIMESTAMPTZ' else 'TIMESTAMP'})"
    expected_min, expected_max = connection.execute(f"SELECT min(v) >= {literal}, max(v) <= {literal} FROM t").fetchone()
    assert (minimum.success, maximum.success) == (expected_min, expected_max)


def test_a_rule_whose_sql_fails_on_the_data_fails_alone():
    """One overflow must not stop the query the other rules share, nor pass."""
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT * FROM (VALUES (9223372036854775807::BIGINT, 1::BIGINT, 5), (1, 2, 6)) v(a, b, x)")
    overflowing = QualityRule(expect="expect_multicolumn_sum_to_equal", column_list=["a", "b"], sum_total=3)
    other = QualityRule(expect="expect_column_values_to_be_between", column="x", min_value=0, max_value=5)
    failed, answered = evaluate_rules(connection, "t", [overflowing, other])
    assert (failed.success, failed.engine) == (False, "duckdb")
    assert failed.summary.startswith("FAILED, DuckDB could not compute it: Out of Range Error: Overflow in addition of INT64")
    assert (answered.success, answered.unexpected_count, answered.partial_unexpected_list) == (False, 1, [6])
