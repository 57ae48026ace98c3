"""Two products in one dbt project: a run that builds only the downstream one reads the
upstream one as published, never a table left behind unchecked; and lineage names it."""

from __future__ import annotations

from contextlib import closing

import dagster as dg
import duckdb
import pytest

from platform_lib import output_port, storage
from platform_lib.contract import Product, load_domain
from platform_lib.domain import domain_assets
from platform_lib.factories import dbt as dbt_factory
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import literal, sources_dir
from tests.dbt.dbt_helpers import add_order

TOTALS_SQL = "select order_id, cast(sum(amount) as decimal(14, 2)) as total from {{ ref('order_lines') }} group by order_id\n"
TOTALS_YML = """version: 2
models:
  - name: order_totals
    config:
      contract: {enforced: true}
    columns:
      - {name: order_id, data_type: bigint}
      - {name: total, data_type: "decimal(14,2)"}
"""
TOTALS_CONTRACT = """description: The amount of each order.
transform: dbt
dbt: {project: orders}
retention: {snapshots: 5}
primary_key: [order_id]
columns:
  - {name: order_id, type: BIGINT, required: true}
  - {name: total, type: "DECIMAL(14,2)", required: true}
"""


def totals(product_id: str = "orders.order_totals") -> dict[int, float]:
    path = output_port.current(product_id).path
    return dict(duckdb.sql(f"SELECT order_id, total FROM read_parquet({literal(str(path))})").fetchall())


@pytest.fixture
def products(published_mesh, domains_copy) -> dict[str, Product]:
    """The sample mesh with a second product in the orders dbt project, order_totals, which reads order_lines."""
    models = published_mesh / "dbt_projects" / "orders" / "models"
    (models / "order_totals.sql").write_text(TOTALS_SQL)
    (models / "order_totals.yml").write_text(TOTALS_YML)
    (domains_copy / "orders" / "products" / "order_totals.yaml").write_text(TOTALS_CONTRACT)
    return products_by_id(load_mesh())


def test_a_product_built_alone_reads_its_project_neighbour_as_published(products, domains_copy):
    assert products["orders.order_totals"].inputs == ("orders.order_lines",)  # not the sources order_lines reads
    outcomes = {o.product: o for o in materialize_products([products["orders.order_lines"], products["orders.order_totals"]])}
    assert {o.status for o in outcomes.values()} == {"published"}
    lines = output_port.current("orders.order_lines")
    assert output_port.current("orders.order_totals").inputs["orders.order_lines"] == lines.version
    good = totals()

    # A candidate of order_lines kept in the domain's file after it failed its checks.
    with closing(storage.connect("orders")) as connection:
        connection.execute("CREATE TABLE _candidate.order_lines AS SELECT * REPLACE (amount + 1000000 AS amount) FROM main.order_lines")
    assets = domain_assets(load_domain(domains_copy / "orders"), [products["orders.order_lines"], products["orders.order_totals"]])
    result = dg.materialize(assets, selection=[dg.AssetKey(["orders", "order_totals"])], raise_on_error=False)
    assert result.success
    assert totals() == good
    assert output_port.current("orders.order_totals").inputs == {"orders.order_lines": lines.version}

    # A later full run builds order_lines again, and drops the kept candidate.
    outcomes = {o.product: o for o in materialize_products([products["orders.order_lines"], products["orders.order_totals"]])}
    assert {o.status for o in outcomes.values()} == {"published"}
    assert totals() == good
    with closing(storage.connect("orders")) as connection:
        assert not connection.execute("SELECT * FROM duckdb_tables() WHERE schema_name = '_candidate'").fetchall()


def test_a_product_not_built_on_its_failed_neighbour_records_no_materialization(products):
    """Else automation would see a new order_totals and start its consumers, which then refuse it."""
    orders = [p for p in products.values() if p.domain == "orders"]
    key = dg.AssetKey(["orders", "order_totals"])
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(o.ok for o in materialize_products(orders, instance))
        add_order(sources_dir(), "many", 900_000_005, 1, status="placed", quantity=1000)  # the contract's rule, not dbt's tests
        outcomes = {o.product: o for o in materialize_products(orders, instance)}
        assert outcomes["orders.order_lines"].failed == ["column_values_to_be_between__quantity"]
        assert "upstream orders.order_lines was not published" in outcomes["orders.order_totals"].message
        assert len(instance.fetch_materializations(key, limit=10).records) == 1
    assert output_port.blocked("orders.order_totals")["failed_checks"] == ["upstream orders.order_lines was not published"]


def test_a_product_built_alone_rebuilds_and_tests_the_private_model_it_reads(products, published_mesh, domains_copy):
    """Else dbt would read the private model's table as the last run left it, though it failed its test there."""
    models = published_mesh / "dbt_projects" / "orders" / "models"
    (models / "lines_kept.sql").write_text("select * from {{ ref('order_lines') }}\n")
    (models / "order_totals.sql").write_text(TOTALS_SQL.replace("ref('order_lines')", "ref('lines_kept')"))
    (published_mesh / "dbt_projects" / "orders" / "tests").mkdir()
    (published_mesh / "dbt_projects" / "orders" / "tests" / "no_line_of_sixty.sql").write_text(
        "select * from {{ ref('lines_kept') }} where quantity = 60\n"
    )
    orders = [p for p in products_by_id(load_mesh()).values() if p.domain == "orders"]
    assert all(o.ok for o in materialize_products(orders))
    good = output_port.current("orders.order_totals")
    add_order(sources_dir(), "sixty", 900_000_007, 1, status="placed", quantity=60)
    outcomes = {o.product: o for o in materialize_products(orders)}
    assert outcomes["orders.order_lines"].ok and not outcomes["orders.order_totals"].ok  # lines_kept failed its test

    assets = domain_assets(load_domain(domains_copy / "orders"), orders)
    result = dg.materialize(assets, selection=[dg.AssetKey(["orders", "order_totals"])], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "model lines_kept (models/lines_kept.sql): failed no_line_of_sixty, rebuilt for the products that read it" in failure
    assert output_port.current("orders.order_totals") == good
    assert 900_000_007 not in totals()


def test_what_the_dbt_process_published_before_it_failed_is_reported(products, monkeypatch):
    """Checking order_totals fails after order_lines was published: the run records order_lines'
    materialization and names the error."""
    original = dbt_factory.audit_and_publish

    def failing_for_totals(connection, product, *args, **kwargs):
        if product.name == "order_totals":
            raise OSError("disk full")
        return original(connection, product, *args, **kwargs)

    monkeypatch.setattr(dbt_factory, "audit_and_publish", failing_for_totals)  # the fork inherits it
    with dg.DagsterInstance.ephemeral() as instance:
        outcomes = {o.product: o for o in materialize_products([products["orders.order_lines"], products["orders.order_totals"]], instance)}
        assert outcomes["orders.order_lines"].ok
        assert "checking and publishing the product models failed: OSError('disk full')" in outcomes["orders.order_totals"].message
        lines = instance.get_latest_materialization_event(dg.AssetKey(["orders", "order_lines"])).asset_materialization
        assert lines.metadata["published_version"].value == output_port.current("orders.order_lines").version
