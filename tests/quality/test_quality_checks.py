"""Quality rules as Dagster asset checks on a real candidate table: verdicts, severity,
counts, examples and the engine that ran each rule, in the metadata a team sees."""

from __future__ import annotations

import dagster as dg
import duckdb

from platform_lib.contract import QualityRule, load_domain, load_products
from platform_lib.factories.quality import check_specs, run_checks
from platform_lib.storage import REPO_ROOT

EXTRA_RULES = (
    QualityRule(expect="expect_column_most_common_value_to_be_in_set", column="status", value_set=["placed"]),
    QualityRule(expect="expect_column_distinct_values_to_contain_set", column="country", value_set=["DE", "FR"], severity="warn"),
)


def _order_lines():
    orders = load_domain(REPO_ROOT / "domains" / "orders")
    product = next(p for p in load_products(orders) if p.name == "order_lines")
    return product.model_copy(update={"quality": product.quality + EXTRA_RULES})


def _candidate(connection: duckdb.DuckDBPyConnection, product) -> str:
    """The contract's table with three lines: a negative amount, a missing segment, 500 items."""
    connection.execute(f"CREATE TABLE candidate ({', '.join(f'{c.name} {c.type}' for c in product.columns)})")
    connection.execute("""
        INSERT INTO candidate VALUES
            (1, 1, 10, DATE '2026-01-01', 'placed',  'A', 2,   20.00, 'consumer', 'DE'),
            (1, 2, 10, DATE '2026-01-01', 'placed',  'B', 1,   -5.00, NULL,       'DE'),
            (2, 1, 11, DATE '2026-01-02', 'shipped', 'A', 500, 99.00, 'consumer', 'NL')
    """)
    return "candidate"


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
