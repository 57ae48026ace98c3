"""The sample mesh with a dbt domain: orders.order_lines is built by dbt, checked and published like any product."""

from __future__ import annotations

import dagster as dg
import duckdb

from platform_lib import output_port
from platform_lib.domain import domain_definitions
from platform_lib.factories.product import automation_condition
from platform_lib.mesh import domains_dir, load_mesh, products_by_id
from platform_lib.storage import literal

ORDER_LINES = dg.AssetKey(["orders", "order_lines"])
RAW_LINES = dg.AssetKey(["orders", "raw_order_lines"])


def snapshot(product_id: str) -> str:
    return f"read_parquet({literal(str(output_port.current(product_id).path))})"


def test_order_lines_is_the_join_of_the_published_inputs(published_template, published_mesh):
    outcomes = published_template.outcomes
    assert {o.status for o in outcomes.values()} == {"published"}, {p: o.message for p, o in outcomes.items()}
    expected = f"""
        SELECT l.order_id, l.line_no, o.customer_id, o.order_date, o.status, l.product_sku, l.quantity,
               CAST(l.quantity * l.unit_price AS DECIMAL(12, 2)) AS amount, c.segment, c.country
        FROM {snapshot("orders.raw_order_lines")} AS l
        JOIN {snapshot("orders.raw_orders")} AS o USING (order_id)
        LEFT JOIN {snapshot("customers.customer_profiles")} AS c USING (customer_id)"""
    published = f"SELECT * FROM {snapshot('orders.order_lines')}"
    assert duckdb.sql(f"SELECT count(*) FROM ({expected})").fetchone()[0] == outcomes["orders.order_lines"].rows > 0
    assert duckdb.sql(f"({expected}) EXCEPT ALL ({published})").fetchall() == []
    assert duckdb.sql(f"({published}) EXCEPT ALL ({expected})").fetchall() == []
    assert output_port.current("orders.order_lines").inputs.keys() == {
        "orders.raw_orders", "orders.raw_order_lines", "customers.customer_profiles"
    }


def test_dbt_tests_are_checks_and_a_warn_test_does_not_block(published_template, published_mesh):
    outcome = published_template.outcomes["orders.order_lines"]
    assert any(name.startswith("accepted_values_order_lines_status") for name in outcome.passed)
    # The order of an unknown customer has no segment: the warn test fails, the product is published anyway.
    [warned] = [name for name in outcome.warned if name.startswith("not_null_order_lines_segment")]
    assert outcome.status == "published" and outcome.ok
    assert output_port.current("orders.order_lines").failed_warn_checks == [warned]  # for `mesh status`
    assert {"schema", "primary_key"} <= set(outcome.passed)


def test_materializations_have_column_lineage_and_schema(published_template):
    def metadata(key):
        return published_template.instance.get_latest_materialization_event(key).asset_materialization.metadata

    def deps(key, column):
        return {(d.asset_key, d.column_name) for d in metadata(key)["dagster/column_lineage"].value.deps_by_column[column]}

    assert deps(ORDER_LINES, "amount") == {(RAW_LINES, "quantity"), (RAW_LINES, "unit_price")}
    assert deps(ORDER_LINES, "segment") == {(dg.AssetKey(["customers", "customer_profiles"]), "segment")}
    published = metadata(ORDER_LINES)
    assert [c.name for c in published["dagster/column_schema"].value.columns][:2] == ["order_id", "line_no"]
    assert published["published"].value is True and published["dbt_model"].value == "orders.order_lines"


def test_dbt_models_are_assets_of_the_domain_with_continuous_lineage(published_mesh):
    orders = domain_definitions(domains_dir() / "orders")
    graph = orders.resolve_asset_graph()
    node = graph.get(ORDER_LINES)
    assert node.group_name == "orders" and node.owners == ["team:team-orders"]
    assert set(node.parent_keys) == {RAW_LINES, dg.AssetKey(["orders", "raw_orders"]), dg.AssetKey(["customers", "customer_profiles"])}
    product = products_by_id(load_mesh())["orders.order_lines"]
    assert node.automation_condition == automation_condition(product)
    assert [c.name for c in node.metadata["dagster/column_schema"].columns] == [c.name for c in product.columns]
    checks = {key.name: graph.get_check_spec(key) for key in node.check_keys}
    assert checks["schema"].blocking and checks["primary_key"].blocking
    accepted = next(spec for name, spec in checks.items() if name.startswith("accepted_values_order_lines_status"))
    warn = next(spec for name, spec in checks.items() if name.startswith("not_null_order_lines_segment"))
    assert accepted.blocking and not warn.blocking
    marketing = domain_definitions(domains_dir() / "marketing").resolve_asset_graph()
    assert ORDER_LINES in marketing.get(dg.AssetKey(["marketing", "customer_lifetime_value"])).parent_keys
