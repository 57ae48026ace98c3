"""A failed blocking check, for real: a bad row in the customers' CSV export.

Sense 1 (same run) and sense 3 (consumers keep the last good version) are shown here
in-process; sense 2 (later runs from schedules and automation, across code
locations) needs the daemon and lives in test_dagster_dev.py.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from platform_lib import output_port, storage
from platform_lib.cli import main
from platform_lib.domain import product_schedule
from platform_lib.status import FAILED, status
from tests.helpers import add_csv_row, products, read_published, run

BAD_SEGMENT = "99999,bad@example.com,Bad Row,NL,2021-01-01,vip"
DOWNSTREAM = ["orders.order_lines", "marketing.customer_lifetime_value", "marketing.segment_revenue"]


def test_downstream_steps_of_the_same_run_do_not_execute(mesh_dir):
    add_csv_row(mesh_dir, BAD_SEGMENT)
    outcomes = run()
    profiles = outcomes["customers.customer_profiles"]
    assert profiles.status == "not published"
    assert profiles.failed == ["column_values_to_be_in_set__segment"]
    assert "vip" in profiles.message and "was not published" in profiles.message
    for product in DOWNSTREAM:
        assert outcomes[product].status == "skipped", outcomes[product]
        assert output_port.current(product) is None
    assert outcomes["orders.order_lines"].message == "not built: customers.customer_profiles was not published in this run"
    assert outcomes["marketing.segment_revenue"].message == (
        "not built: marketing.customer_lifetime_value was not published in this run"
    )
    assert outcomes["orders.raw_orders"].status == "published", "unrelated products still publish"


def test_consumers_keep_reading_the_last_good_version(mesh_dir):
    run()
    good = output_port.current("customers.customer_profiles")
    good_rows = read_published("customers.customer_profiles")
    add_csv_row(mesh_dir, BAD_SEGMENT)
    outcome = run("customers")["customers.customer_profiles"]
    assert outcome.status == "not published" and outcome.version == good.version
    assert output_port.current("customers.customer_profiles") == good
    assert read_published("customers.customer_profiles") == good_rows
    assert output_port.blocked("customers.customer_profiles")["failed_checks"] == ["column_values_to_be_in_set__segment"]
    with duckdb.connect(str(storage.warehouse_path("customers")), read_only=True) as connection:
        segments = {r[0] for r in connection.execute("SELECT DISTINCT segment FROM main.customer_profiles").fetchall()}
    assert "vip" not in segments, "the domain's own view still serves the published version"


def kept_candidate_segments(domain: str, product: str) -> set[str] | None:
    """The segments of the failed candidate the domain's file keeps for inspection, None if it keeps none."""
    with duckdb.connect(str(storage.warehouse_path(domain)), read_only=True) as connection:
        kept = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_candidate' AND table_name = ?", [product]
        ).fetchone()[0]
        return {r[0] for r in connection.execute(f"SELECT DISTINCT segment FROM _candidate.{product}").fetchall()} if kept else None


def test_later_runs_do_not_build_on_a_blocked_input(mesh_dir):
    run()
    before = output_port.current("orders.order_lines")
    assert kept_candidate_segments("customers", "customer_profiles") is None, "a published candidate is not kept"
    add_csv_row(mesh_dir, BAD_SEGMENT)
    run("customers")
    assert "vip" in kept_candidate_segments("customers", "customer_profiles"), "the failed candidate is kept to look into"
    outcome = run("orders")["orders.order_lines"]
    assert outcome.status == "failed"
    assert "customers.customer_profiles failed column_values_to_be_in_set__segment" in outcome.message
    assert output_port.current("orders.order_lines") == before
    # `mesh status` tells the consumers' teams why their products stand still.
    for consumer in ("orders.order_lines", "marketing.customer_lifetime_value"):
        run(consumer.split(".")[0])
        assert "is not built while an input is blocked: customers.customer_profiles failed" in output_port.failed(consumer)["error"]
        assert status({p.id: p for p in products()}[consumer]).state == FAILED

    (schedule,) = [product_schedule(p) for p in products("orders") if p.schedule]
    with dg.build_schedule_context() as context:
        decision = schedule(context)
    assert isinstance(decision, dg.SkipReason) and "customers.customer_profiles" in decision.skip_message

    # The fix: remove the bad row, rebuild customers, and everything flows again.
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    source.write_text("".join(l for l in source.read_text().splitlines(keepends=True) if "vip" not in l))
    assert run("customers")["customers.customer_profiles"].status == "published"
    assert kept_candidate_segments("customers", "customer_profiles") is None, "the fixed run drops the kept candidate"
    with dg.build_schedule_context() as context:
        assert isinstance(schedule(context), dg.RunRequest)
    assert run("orders")["orders.order_lines"].status == "published"
    assert output_port.current("orders.order_lines").version != before.version
    assert output_port.failed("orders.order_lines") is None


@pytest.mark.parametrize("severity, publishes, listed", [("warn", True, "warned"), ("error", False, "failed")])
def test_only_error_severity_blocks(mesh_dir, domains_copy, severity, publishes, listed):
    contract = domains_copy / "orders" / "products" / "order_lines.yaml"
    contract.write_text(
        contract.read_text()
        + f"  - {{expect: expect_column_values_to_be_between, column: quantity, max_value: 2, name: small_quantities, severity: {severity}}}\n"
    )
    run("customers")
    outcome = run("orders")["orders.order_lines"]
    assert getattr(outcome, listed) == ["small_quantities"]
    assert (outcome.status == "published") is publishes and outcome.ok is publishes


def test_a_failed_warn_check_is_a_warning_of_the_command_not_a_failure(mesh_dir, domains_copy, capsys):
    contract = domains_copy / "customers" / "products" / "customer_profiles.yaml"
    contract.write_text(contract.read_text().replace("min_value: 1, severity: warn", "min_value: 1000000, severity: warn"))

    assert main(["materialize", "customers"]) == 0

    out = capsys.readouterr().out
    assert "customers.customer_profiles: warning: table_row_count_to_be_between failed (severity warn: reported, not blocking)" in out
    assert "FAILED" not in out
    assert output_port.current("customers.customer_profiles") is not None


def test_a_refused_candidate_is_observed_not_materialized(mesh_dir):
    """The served version did not change: a materialization would have Dagster's freshness
    policy, and the asset's page, count the refused candidate as the product's latest version."""
    instance = dg.DagsterInstance.ephemeral()
    run("customers", instance=instance)
    key = dg.AssetKey(["customers", "customer_profiles"])
    published = instance.get_latest_materialization_event(key)
    add_csv_row(mesh_dir, BAD_SEGMENT)
    assert run("customers", instance=instance)["customers.customer_profiles"].status == "not published"
    assert instance.get_latest_materialization_event(key).run_id == published.run_id
    [observed] = instance.fetch_observations(key, limit=1).records
    assert observed.run_id != published.run_id
    assert observed.asset_observation.metadata["published"].value is False
    assert observed.asset_observation.metadata["served_version"].text == output_port.current("customers.customer_profiles").version


def test_a_schedule_skips_its_tick_while_an_inputs_blocked_file_is_unreadable(mesh_dir):
    run()
    blocked = output_port.port_dir("customers.customer_profiles") / output_port.BLOCKED
    blocked.write_text("{")
    (schedule,) = [product_schedule(p) for p in products("orders") if p.schedule]
    with dg.build_schedule_context() as context:
        decision = schedule(context)
    assert isinstance(decision, dg.SkipReason)
    assert decision.skip_message.startswith(f"{blocked}: product customers.customer_profiles: not valid JSON")
