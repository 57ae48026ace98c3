"""Quality rules as Dagster asset checks on a real candidate table: verdicts, severity,
counts, examples and the engine that ran each rule, in the metadata a team sees."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from platform_lib.contract import Column, Product, QualityRule
from platform_lib.factories.quality import check_specs, primary_key_problems, run_checks
from platform_lib.quality import bitmap

COLUMNS = (
    Column(name="order_id", type="BIGINT", required=True),
    Column(name="line_no", type="INTEGER", required=True),
    Column(name="status", type="VARCHAR", required=True),
    Column(name="quantity", type="INTEGER", required=True),
    Column(name="amount", type="DECIMAL(12,2)", required=True),
    Column(name="segment", type="VARCHAR"),
    Column(name="country", type="VARCHAR"),
)
RULES = (
    QualityRule(expect="expect_column_values_to_be_between", column="amount", min_value=0),
    QualityRule(expect="expect_column_values_to_be_between", column="quantity", min_value=1, max_value=100),
    QualityRule(expect="expect_column_values_to_be_in_set", column="status", value_set=["placed", "shipped"]),
    QualityRule(expect="expect_column_values_to_not_be_null", column="segment", mostly=0.99, severity="warn"),
    QualityRule(expect="expect_column_most_common_value_to_be_in_set", column="status", value_set=["placed"]),
    QualityRule(expect="expect_column_distinct_values_to_contain_set", column="country", value_set=["DE", "FR"], severity="warn"),
)


def _order_lines() -> Product:
    return Product(
        domain="orders", name="order_lines", path=Path("order_lines.yaml"), description="Order lines.", owner="team-orders",
        transform="sql", inputs=("orders.raw_order_lines",), primary_key=("order_id", "line_no"), columns=COLUMNS, quality=RULES,
    )  # fmt: skip


def _candidate(connection: duckdb.DuckDBPyConnection, product) -> str:
    """The contract's table with three lines: a negative amount, a missing segment, 500 items."""
    connection.execute(f"CREATE TABLE candidate ({', '.join(f'{c.name} {c.type}' for c in product.columns)})")
    connection.execute("""
        INSERT INTO candidate VALUES
            (1, 1, 'placed',  2,   20.00, 'consumer', 'DE'),
            (1, 2, 'placed',  1,   -5.00, NULL,       'DE'),
            (2, 1, 'shipped', 500, 99.00, 'consumer', 'NL')
    """)
    return "candidate"


def test_a_missing_column_leaves_unevaluated_only_the_checks_that_need_it():
    product = _order_lines()
    connection = duckdb.connect()
    relation = _candidate(connection, product)
    connection.execute("ALTER TABLE candidate DROP COLUMN status")
    results = {r.check_name: r for r in run_checks(connection, product, relation)}
    assert results["schema"].description == "missing column status"
    lacking = "not evaluated: the candidate lacks status"
    assert [name for name, r in results.items() if r.description == lacking] == [
        "column_values_to_be_in_set__status", "column_most_common_value_to_be_in_set__status"
    ]
    assert all(not results[n].passed for n in ("schema", "column_values_to_be_in_set__status"))
    # The key is there, and so are the other rules' columns: they run as usual.
    assert results["primary_key"].passed and results["primary_key"].description == "unique and not null"
    assert not results["column_values_to_be_between__amount"].passed
    assert results["column_values_to_be_between__amount"].metadata["unexpected_count"].value == 1
    connection.execute("ALTER TABLE candidate DROP COLUMN line_no")
    key = next(r for r in run_checks(connection, product, relation) if r.check_name == "primary_key")
    assert (key.passed, key.description) == (False, "not evaluated: the candidate lacks line_no")


def test_an_optional_column_null_in_every_row_is_noted_by_the_passing_schema_check():
    """What a source whose producer renamed a field looks like: worth a word, not a block."""
    product = _order_lines()
    connection = duckdb.connect()
    relation = _candidate(connection, product)
    connection.execute("UPDATE candidate SET country = NULL")
    schema = next(r for r in run_checks(connection, product, relation) if r.check_name == "schema")
    assert schema.passed and schema.metadata["empty_columns"].value == ["country"]
    assert schema.description == "matches the contract; optional column country is NULL in every row"
    connection.execute("UPDATE candidate SET country = 'DE' WHERE order_id = 2")
    schema = next(r for r in run_checks(connection, product, relation) if r.check_name == "schema")
    assert schema.description == "matches the contract" and schema.metadata["empty_columns"].value == []


def test_rule_results_carry_verdict_severity_counts_examples_and_engine():
    product = _order_lines()
    connection = duckdb.connect()
    results = {r.check_name: r for r in run_checks(connection, product, _candidate(connection, product))}
    assert set(results) == {spec.name for spec in check_specs(product)}
    assert results["schema"].passed and results["primary_key"].passed

    amount = results["column_values_to_be_between__amount"]
    assert not amount.passed and amount.severity == dg.AssetCheckSeverity.ERROR
    assert {k: amount.metadata[k].value for k in ("engine", "element_count", "unexpected_count")} == {
        "engine": "duckdb", "element_count": 3, "unexpected_count": 1,
    }  # fmt: skip
    assert amount.metadata["unexpected_sample"].value == [-5.0]

    quantity = results["column_values_to_be_between__quantity"]
    assert not quantity.passed and quantity.metadata["unexpected_sample"].value == [500]

    segment = results["column_values_to_not_be_null__segment"]
    assert not segment.passed and segment.severity == dg.AssetCheckSeverity.WARN
    assert segment.metadata["unexpected_count"].value == 1

    countries = results["column_distinct_values_to_contain_set__country"]
    assert not countries.passed and countries.metadata["missing_count"].value == 1
    assert countries.metadata["partial_missing_list"].value == ["FR"]

    assert results["column_values_to_be_in_set__status"].passed
    most_common = results["column_most_common_value_to_be_in_set__status"]
    assert most_common.passed and most_common.metadata["engine"].value == "great_expectations"


def test_primary_key_check_finds_the_same_duplicates_with_or_without_a_bitmap():
    """Integer keys are first counted in a bitmap, text keys only grouped: both name the same duplicates."""
    connection = duckdb.connect()
    connection.execute("""
        CREATE TABLE keys AS SELECT id, id::VARCHAR AS code, id % 3 AS part FROM range(1000) t(id);
        INSERT INTO keys VALUES (7, '7', 1), (7, '7', 1), (NULL, NULL, 2)
    """)

    def problems(*key: str) -> tuple[list[str], dict]:
        product = _order_lines().model_copy(update={"primary_key": key})
        return primary_key_problems(connection, product, "keys")

    assert bitmap.distinct_keys(connection, "keys", {"id": "BIGINT", "part": "BIGINT"}, 1003) is not None
    assert bitmap.distinct_keys(connection, "keys", {"code": "VARCHAR"}, 1003) is None
    for key in (("id", "part"), ("code", "part")):
        found, metadata = problems(*key)
        assert metadata["null_key_rows"] == 1 and metadata["duplicated_keys"] == 1 and metadata["duplicate_rows"] == 2
        assert metadata["duplicate_sample"][0]["copies"] == 3, key
    secret = _order_lines().model_copy(update={"primary_key": ("code",), "columns": (Column(name="code", type="VARCHAR", pii=True),)})
    found, metadata = primary_key_problems(connection, secret, "keys")
    assert metadata["duplicate_sample"] == [] and "values not shown" in found[1] and "'7'" not in found[1]
    assert metadata["values_withheld"] == "code is PII: query the candidate in the domain's warehouse"
    connection.execute("DELETE FROM keys WHERE id = 7 AND rowid > 999")
    for key in (("id", "part"), ("code", "part")):
        assert problems(*key)[0] == ["1 row with a null key"], key


def test_checks_on_pii_columns_report_counts_but_never_values():
    columns = tuple(c.model_copy(update={"pii": c.name == "quantity"}) for c in COLUMNS)
    product = _order_lines().model_copy(update={"columns": columns})
    connection = duckdb.connect()
    results = {r.check_name: r for r in run_checks(connection, product, _candidate(connection, product))}
    quantity = results["column_values_to_be_between__quantity"]
    assert not quantity.passed and quantity.metadata["unexpected_count"].value == 1
    assert "unexpected_sample" not in quantity.metadata and "500" not in quantity.description
    assert "quantity is PII" in quantity.metadata["values_withheld"].value
    amount = results["column_values_to_be_between__amount"]
    assert amount.metadata["unexpected_sample"].value == [-5.0] and "values_withheld" not in amount.metadata


def test_a_pii_columns_values_stay_out_of_what_great_expectations_reports_besides():
    """A KL divergence's result lists the column's values in its partition (GE's `details`)."""
    columns = tuple(c.model_copy(update={"pii": c.name == "status"}) for c in COLUMNS)
    rule = QualityRule(
        expect="expect_column_kl_divergence_to_be_less_than", column="status", threshold=0.1,
        partition_object={"values": ["placed"], "weights": [1.0]},
    )
    product = _order_lines().model_copy(update={"columns": columns, "quality": (rule,)})
    connection = duckdb.connect()
    [check] = [r for r in run_checks(connection, product, _candidate(connection, product)) if r.check_name == rule.check_name]
    shown = repr({k: v.value for k, v in check.metadata.items()}) + check.description
    assert check.metadata["engine"].value == "great_expectations" and "status is PII" in check.metadata["values_withheld"].value
    assert not any(status in shown for status in ("shipped", "delivered", "returned")), shown


def test_an_error_computing_a_rule_on_a_pii_column_keeps_only_its_kind():
    """DuckDB's error quotes the values it failed on."""
    rule = QualityRule(expect="expect_multicolumn_sum_to_equal", column_list=["a", "b"], sum_total=3)
    columns = (Column(name="a", type="BIGINT", pii=True), Column(name="b", type="BIGINT"))
    product = _order_lines().model_copy(update={"columns": columns, "primary_key": (), "quality": (rule,)})
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT * FROM (VALUES (9223372036854775807::BIGINT, 1::BIGINT), (1, 2)) v(a, b)")
    [check] = [r for r in run_checks(connection, product, "t") if r.check_name == rule.check_name]
    shown = repr({k: v.value for k, v in check.metadata.items()}) + check.description
    assert not check.passed and "9223372036854775807" not in shown
    assert check.metadata["exception"].value == "Out of Range Error (the rest is withheld: the column is PII)"


def test_a_bad_value_on_many_rows_is_one_example():
    """The sample is of rows, as GE's: a status wrong on every new row would fill it alone."""
    product, connection = _order_lines(), duckdb.connect()
    _candidate(connection, product)
    connection.execute("INSERT INTO candidate SELECT 3, range, 'bogus', 1, 1.00, NULL, 'DE' FROM range(1, 30)")
    status = {r.check_name: r for r in run_checks(connection, product, "candidate")}["column_values_to_be_in_set__status"]
    assert status.metadata["unexpected_count"].value == 29
    assert status.metadata["unexpected_sample"].value == ["bogus"]
    assert status.description == "FAILED, 29 of 32 rows unexpected, e.g. ['bogus']"


def test_row_count_holds_a_candidate_to_the_served_versions_rows():
    """An export cut short is a valid but small product: `max_row_drop` keeps it from replacing the served one."""
    product, connection = _order_lines().model_copy(update={"max_row_drop": 0.5}), duckdb.connect()
    _candidate(connection, product)  # three rows
    assert "row_count" in {spec.name for spec in check_specs(product)}
    verdicts = {}
    for served in (None, 6, 7):
        check = {r.check_name: r for r in run_checks(connection, product, "candidate", served_rows=served)}["row_count"]
        verdicts[served] = (check.passed, check.description)
    assert verdicts == {
        None: (True, "3 rows, no served version to compare with"),
        6: (True, "3 rows against 6 served"),
        7: (False, "3 rows against 7 served: 57.14% fewer, more than max_row_drop 0.5 allows"),
    }
    assert "row_count" not in {r.check_name for r in run_checks(connection, _order_lines(), "candidate", served_rows=7)}
