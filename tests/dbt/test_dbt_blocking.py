"""The three senses of blocking for a dbt product, with a real bad row in the orders source."""

from __future__ import annotations

from contextlib import closing

import dagster as dg
import duckdb

from platform_lib import output_port, storage
from platform_lib.domain import domain_definitions
from platform_lib.mesh import domains_dir
from platform_lib.storage import data_dir, literal, sources_dir
from tests.dbt.dbt_helpers import add_order
from tests.helpers import add_csv_row, run


def test_a_failing_error_severity_dbt_test_blocks_the_product(published_mesh):
    good = output_port.current("orders.order_lines")
    add_order(sources_dir(), "lost", 900_000_002, 1, status="lost")

    outcomes = run("orders", "marketing")

    order_lines = outcomes["orders.order_lines"]
    failed_test = next(name for name in order_lines.failed if name.startswith("accepted_values_order_lines_status"))
    assert order_lines.status == "not published"
    assert "dbt project orders, model order_lines (models/order_lines.sql)" in order_lines.message
    assert failed_test in output_port.blocked("orders.order_lines")["failed_checks"]
    # 1. downstream steps of the same run do not execute
    assert outcomes["marketing.customer_lifetime_value"].status == "skipped"
    # 3. consumers still read the last good version, which has no lost order
    assert output_port.current("orders.order_lines") == good
    lost = duckdb.sql(f"SELECT count(*) FROM read_parquet({literal(str(good.path))}) WHERE status = 'lost'").fetchone()[0]
    assert lost == 0
    # the refused candidate, built in memory, is kept in the domain's file to look into, and dbt's log of the run
    with closing(storage.connect("orders")) as connection:
        assert connection.execute("SELECT count(*) FROM _candidate.order_lines WHERE status = 'lost'").fetchone()[0] == 1
    assert [run.name for run in (data_dir() / "dbt" / "orders" / "runs").iterdir() if (run / "dbt.log").exists()]
    # 2. a later run of a consumer, in another domain, does not build on it
    later = run("marketing")
    assert later["marketing.customer_lifetime_value"].status == "failed"
    assert "orders.order_lines failed accepted_values_order_lines_status" in later["marketing.customer_lifetime_value"].message


def test_a_dbt_product_is_not_built_on_a_blocked_input(published_mesh):
    add_csv_row(data_dir(), "900000003,vip@example.com,Vera Ip,DE,2024-01-01,vip")
    good = output_port.current("orders.order_lines")

    assert run("customers")["customers.customer_profiles"].status == "not published"
    later = run("orders")

    assert later["orders.order_lines"].status == "failed"
    assert "not built while an input is blocked: customers.customer_profiles failed" in later["orders.order_lines"].message
    assert output_port.current("orders.order_lines") == good


def test_a_failing_singular_test_on_two_relations_blocks_the_product(published_mesh):
    """dagster-dbt reports such a test as an observation, not a check: dbt's run results decide."""
    tests = published_mesh / "dbt_projects" / "orders" / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "no_line_of_sixty.sql").write_text(
        "SELECT l.order_id FROM {{ ref('order_lines') }} AS l JOIN {{ source('orders', 'raw_orders') }} AS o USING (order_id)\n"
        "WHERE l.quantity >= 60\n"
    )
    good = output_port.current("orders.order_lines")
    add_order(sources_dir(), "sixty", 900_000_004, 1, status="placed", quantity=60)

    order_lines = run("orders")["orders.order_lines"]
    assert order_lines.status == "not published" and "no_line_of_sixty" in order_lines.message
    assert output_port.current("orders.order_lines") == good
    assert output_port.blocked("orders.order_lines")["failed_checks"] == ["no_line_of_sixty"]


def test_a_singular_test_that_cannot_run_is_named_as_a_test(published_mesh):
    tests = published_mesh / "dbt_projects" / "orders" / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "no_such_column.sql").write_text("SELECT no_such_column FROM {{ ref('order_lines') }}\n")
    order_lines = run("orders")["orders.order_lines"]
    assert not order_lines.ok and "dbt project orders, test no_such_column (tests/no_such_column.sql): " in order_lines.message


def test_a_refused_dbt_product_is_observed_not_materialized(published_mesh):
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["orders", "order_lines"])
    run("orders", instance=instance)
    published = instance.get_latest_materialization_event(key)
    add_order(sources_dir(), "lost", 900_000_003, 1, status="lost")
    assert run("orders", instance=instance)["orders.order_lines"].status == "not published"
    assert instance.get_latest_materialization_event(key).run_id == published.run_id
    [observed] = instance.fetch_observations(key, limit=1).records
    assert observed.run_id != published.run_id and observed.asset_observation.metadata["published"].value is False


def test_a_run_of_a_dbt_products_checks_alone_says_to_materialize_it(published_mesh):
    """The checks run on the candidate a build makes: Dagster lets the UI launch them alone."""
    job = domain_definitions(domains_dir() / "orders").resolve_implicit_global_asset_job_def()
    check = dg.AssetCheckKey(dg.AssetKey(["orders", "order_lines"]), "schema")
    result = job.get_subset(asset_selection=set(), asset_check_selection={check}).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    [failure] = result.get_step_failure_events()
    assert failure.event_specific_data.user_failure_data.description == (
        "the checks of orders/order_lines run only on a new candidate: materialize orders/order_lines to run them"
    )
