"""Provenance and cost attribution, read back from real runs recorded in a real Dagster instance."""

from __future__ import annotations

from datetime import timedelta, timezone

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.catalog import latest_checks
from platform_lib.cli import main
from platform_lib.costs import product_costs
from platform_lib.lineage import readers, upstream
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import REPO_ROOT
from tests.helpers import add_csv_row

CUSTOMERS = ["customers.raw_customers", "customers.customer_profiles"]
ORDERS = ["orders.raw_orders", "orders.raw_order_lines", "orders.order_lines"]


@pytest.fixture
def history(mesh_dir, tmp_path, monkeypatch):
    """Customers published twice, orders once in between: order_lines read the first customers version."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    products = products_by_id(load_mesh())
    runs = []
    for batch in (CUSTOMERS, ORDERS, CUSTOMERS):
        outcomes = materialize_products([products[i] for i in batch])
        assert all(o.ok for o in outcomes)
        runs.append({o.product: o for o in outcomes})
    return runs


def test_lineage_names_the_exact_versions_read_even_after_the_producer_moved_on(history, capsys):
    first_customers, orders, second_customers = history
    tree = upstream("orders.order_lines")
    assert tree.version == orders["orders.order_lines"].version
    read = {child.product: child for child in tree.inputs}
    assert read["customers.customer_profiles"].version == first_customers["customers.customer_profiles"].version
    assert read["customers.customer_profiles"].current == second_customers["customers.customer_profiles"].version
    assert read["orders.raw_orders"].version == orders["orders.raw_orders"].version
    [profile_source] = read["customers.customer_profiles"].inputs
    assert profile_source.version == first_customers["customers.raw_customers"].version

    assert [(r.product, r.inputs["customers.customer_profiles"]) for r in readers("customers.customer_profiles")] == [
        ("orders.order_lines", first_customers["customers.customer_profiles"].version)
    ]
    assert main(["lineage", "orders.order_lines"]) == 0
    out = capsys.readouterr().out
    assert f"[current is {second_customers['customers.customer_profiles'].version}]" in out
    assert "read by no retained snapshot" in out
    for unknown in ("orders.order_line", "order_lines"):
        assert main(["lineage", unknown]) == 2
        assert f"no product {unknown} in the mesh or its output ports" in capsys.readouterr().err
    assert main(["lineage", "marketing.segment_revenue"]) == 0  # in the mesh, never published: not an error
    assert capsys.readouterr().out == "marketing.segment_revenue has never been published\n"


def test_costs_attribute_steps_rows_and_bytes_to_products_and_domains(history, capsys):
    products = [p for d in load_mesh() for p in d.products]
    with dg.DagsterInstance.get() as instance:
        costs = {c.product: c for c in product_costs(products, instance)}
    for product_id in CUSTOMERS + ORDERS:
        runs = [run[product_id] for run in history if product_id in run]
        cost = costs[product_id]
        assert cost.steps == len(runs)
        assert cost.rows_written == sum(o.rows for o in runs)
        assert cost.compute_seconds > 0
        retained = [output_port.snapshot(product_id, v) for v in output_port.versions(product_id)]
        assert cost.storage_bytes > sum(s.bytes for s in retained)  # the data, plus the manifests and pointer
    assert costs["marketing.segment_revenue"].steps == 0 and costs["marketing.segment_revenue"].storage_bytes == 0
    assert costs["<customers.duckdb>"].storage_bytes > 0
    assert main(["costs"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len({len(line) for line in table}) == 1, "the columns line up, the numbers right-aligned"
    assert [line.split()[:2] for line in table if "TOTAL" in line] == [["customers", "TOTAL"], ["marketing", "TOTAL"], ["orders", "TOTAL"]]


def test_costs_since_a_time_count_only_the_runs_created_from_then_on(history, capsys):
    products = [p for d in load_mesh() for p in d.products]
    with dg.DagsterInstance.get() as instance:
        last = instance.get_run_records(limit=1)[0].create_timestamp  # the second customers run
        costs = {c.product: c for c in product_costs(products, instance, since=last)}
    assert costs["customers.raw_customers"].steps == 1 and costs["orders.raw_orders"].steps == 0
    assert costs["customers.raw_customers"].rows_written == history[2]["customers.raw_customers"].rows
    assert costs["orders.raw_orders"].storage_bytes > 0  # what it stores now, whatever ran when

    in_paris = last.astimezone(timezone(timedelta(hours=1))).isoformat()  # the same time, as another zone writes it
    assert main(["costs", "--since", in_paris]) == 0
    out = capsys.readouterr().out
    assert f"compute and rows of the runs created since {in_paris}" in out
    assert {line.split()[0]: line.split()[2] for line in out.splitlines() if "TOTAL" in line} == {"customers": "2", "marketing": "0", "orders": "0"}
    with pytest.raises(SystemExit):
        main(["costs", "--since", "last week"])
    assert "'last week' is no date or time" in capsys.readouterr().err


def test_a_run_stopped_by_a_blocked_input_is_charged_and_leaves_the_last_check_results(history, mesh_dir):
    """The dbt step fails before it builds anything: its time is its products' cost, and
    their checks, planned but never run, do not hide the results of the last run that ran them."""
    products = products_by_id(load_mesh())
    add_csv_row(mesh_dir, "999999,bad@example.com,Bad Row,NL,2024-01-01,vip")
    materialize_products([products[i] for i in CUSTOMERS])
    [stopped] = materialize_products([products["orders.order_lines"]])
    assert not stopped.ok and "is not built while an input is blocked" in stopped.message
    with dg.DagsterInstance.get() as instance:
        costs = {c.product: c for c in product_costs(list(products.values()), instance)}
        checks = latest_checks([products["orders.order_lines"]], instance)["orders.order_lines"]
    assert costs["orders.order_lines"].steps == 2
    assert {c["status"] for c in checks} == {"SUCCEEDED"} and {c["run_id"] for c in checks} != {None}


def test_a_relative_dagster_home_is_made_absolute_and_a_new_one_gets_the_local_instance(mesh_dir, tmp_path, monkeypatch, capsys):
    """As a shell line writes it (`DAGSTER_HOME=.dagster_home mesh costs`): Dagster itself refuses a relative path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "home")
    assert main(["materialize", "--quiet", "customers"]) == 0
    assert (tmp_path / "home" / "dagster.yaml").read_text() == (REPO_ROOT / "deploy" / "dagster.local.yaml").read_text()
    capsys.readouterr()
    assert main(["costs"]) == 0
    assert "customers.raw_customers" in capsys.readouterr().out
