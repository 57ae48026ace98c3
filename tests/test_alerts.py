"""The status alerts sensor against a real HTTP endpoint and real output ports."""

from __future__ import annotations

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.domain import domain_definitions
from platform_lib.mesh import domains_dir
from tests.helpers import add_csv_row, run, webhook

BAD_SEGMENT = "999999,bad@example.com,Bad Row,NL,2024-01-01,vip"


@pytest.fixture
def hook():
    with webhook() as endpoint:
        yield endpoint


def tick(cursor: str | None) -> tuple[str | None, str]:
    """One evaluation of the customers domain's alerts sensor: its new cursor and what it said."""
    sensor = domain_definitions(domains_dir() / "customers").resolve_sensor_def("customers_status_alerts")
    context = dg.build_sensor_context(cursor=cursor)
    result = sensor.evaluate_tick(context)
    return context.cursor, result.skip_message


def test_a_blocked_product_is_posted_once_and_so_is_its_recovery(mesh_dir, hook, monkeypatch):
    url, received = hook
    monkeypatch.setenv("MESH_ALERT_WEBHOOK_CUSTOMERS", url)
    cursor, said = tick(None)
    assert received == [] and said == "no change", "never published is not an alert"

    assert all(o.ok for o in run("customers").values())
    cursor, said = tick(cursor)
    assert received == [] and said == "no change"

    add_csv_row(mesh_dir, BAD_SEGMENT)
    run("customers")
    cursor, said = tick(cursor)
    [alert] = received
    served = output_port.current("customers.customer_profiles")
    assert (alert["product"], alert["state"], alert["was"], alert["owner"], alert["version"]) == (
        "customers.customer_profiles", "BLOCKED", "ok", "team-customers", served.version
    )
    assert "column_values_to_be_in_set__segment failed" in alert["why"] and said == "posted 1 change(s)"
    assert alert["text"] == f"customers.customer_profiles (team-customers) is BLOCKED, was ok: {alert['why']}"
    cursor, said = tick(cursor)
    assert len(received) == 1 and said == "no change", "a state is posted when it changes, not every tick"

    source = mesh_dir / "sources" / "customers" / "customers.csv"
    source.write_text(source.read_text().replace(BAD_SEGMENT + "\n", ""))
    assert all(o.ok for o in run("customers").values())
    cursor, said = tick(cursor)
    assert [(a["product"], a["state"], a["was"]) for a in received[1:]] == [("customers.customer_profiles", "ok", "BLOCKED")]
    assert received[1]["text"] == "customers.customer_profiles (team-customers) is ok, was BLOCKED"


def test_a_run_that_fails_before_its_checks_is_posted(mesh_dir, hook, monkeypatch):
    url, received = hook
    monkeypatch.setenv("MESH_ALERT_WEBHOOK", url)
    assert all(o.ok for o in run("customers").values())
    cursor, _ = tick(None)
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    export = source.read_text()
    source.write_text(export.splitlines()[0] + "\n")
    assert not run("customers")["customers.raw_customers"].ok
    cursor, _ = tick(cursor)
    [alert] = received
    assert (alert["product"], alert["state"], alert["was"]) == ("customers.raw_customers", "FAILED", "ok")
    assert alert["text"].startswith("customers.raw_customers (team-customers) is FAILED, was ok: the latest run ")
    assert "failed before its checks: customers.raw_customers: the source has no data rows" in alert["text"]

    source.write_text(export)
    assert all(o.ok for o in run("customers").values())
    tick(cursor)
    assert [(a["product"], a["state"], a["was"]) for a in received[1:]] == [("customers.raw_customers", "ok", "FAILED")]


def test_a_failed_post_fails_the_tick_and_is_posted_again(mesh_dir, hook, monkeypatch):
    url, received = hook
    assert all(o.ok for o in run("customers").values())
    cursor, _ = tick(None)
    add_csv_row(mesh_dir, BAD_SEGMENT)
    run("customers")
    monkeypatch.setenv("MESH_ALERT_WEBHOOK", "http://127.0.0.1:9/nothing-listens")  # the discard port: refused
    with pytest.raises(Exception, match="posting customers.customer_profiles BLOCKED to the webhook of domain customers failed"):
        tick(cursor)
    monkeypatch.setenv("MESH_ALERT_WEBHOOK", url)
    tick(cursor)
    assert [(a["product"], a["state"]) for a in received] == [("customers.customer_profiles", "BLOCKED")]


def test_without_a_webhook_the_sensor_is_stopped_and_skips(mesh_dir, monkeypatch):
    monkeypatch.delenv("MESH_ALERT_WEBHOOK", raising=False)
    monkeypatch.delenv("MESH_ALERT_WEBHOOK_CUSTOMERS", raising=False)
    sensor = domain_definitions(domains_dir() / "customers").resolve_sensor_def("customers_status_alerts")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert tick(None) == (None, "no webhook: set MESH_ALERT_WEBHOOK_CUSTOMERS or MESH_ALERT_WEBHOOK")
