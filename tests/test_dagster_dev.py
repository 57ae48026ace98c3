"""`dagster dev` on the sample mesh: the UI serves every domain, the mesh builds itself,
and automation in one code location never builds on another location's failed check.

The tests in this module run in order against one server (pytest-xdist keeps a file
on one worker): starting the daemon costs more than everything else here.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from platform_lib import output_port
from tests import dagster_dev
from tests.helpers import webhook
from platform_lib.localstack import wait_for

pytestmark = pytest.mark.slow

PRODUCTS = [
    "customers.raw_customers", "customers.customer_profiles", "orders.raw_orders", "orders.raw_order_lines",
    "orders.order_lines", "marketing.customer_lifetime_value", "marketing.segment_revenue",
]
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
SENSORS = """query ($location: String!) { sensorsOrError(repositorySelector:
    {repositoryLocationName: $location, repositoryName: "__repository__"}) {
    ... on Sensors { results { name sensorState { status ticks(limit: 50) { timestamp status } } } } } }"""
SCHEDULES = """query ($location: String!) { schedulesOrError(repositorySelector:
    {repositoryLocationName: $location, repositoryName: "__repository__"}) {
    ... on Schedules { results { name scheduleState { status } } } } }"""
MATERIALIZATIONS = """query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 50) { runId timestamp } } } }"""
RUN_TAGS = """query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { tags { key value } } } }"""


@pytest.fixture(scope="module")
def alerts():
    """The teams' webhook: every domain's status alerts sensor posts here."""
    with webhook() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_sources, monkeypatch_module, alerts):
    running = dagster_dev.start(tmp_path_factory.mktemp("dev"), sample_sources, env={"MESH_ALERT_WEBHOOK": alerts[0]})
    monkeypatch_module.setenv("MESH_DATA_DIR", str(running.data_dir))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_ui_serves_every_domain_with_schedules_and_sensors_running(server):
    with urllib.request.urlopen(server.url, timeout=30) as response:
        assert response.status == 200 and b"Dagster" in response.read()
    entries = server.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
    assert {e["name"]: e["locationOrLoadError"]["__typename"] for e in entries} == {
        "customers": "RepositoryLocation", "orders": "RepositoryLocation", "marketing": "RepositoryLocation",
    }
    for location in ("customers", "orders", "marketing"):
        sensors = server.graphql(SENSORS, {"location": location})["sensorsOrError"]["results"]
        assert [(s["name"], s["sensorState"]["status"]) for s in sensors] == [
            (f"{location}_automation", "RUNNING"), (f"{location}_status_alerts", "RUNNING")
        ]
    schedules = server.graphql(SCHEDULES, {"location": "orders"})["schedulesOrError"]["results"]
    assert [(s["name"], s["scheduleState"]["status"]) for s in schedules] == [("order_lines_schedule", "RUNNING")]


def test_the_mesh_materializes_itself_on_first_start(server):
    wait_for(lambda: all(output_port.current(p) for p in PRODUCTS), 300, "every product to be published by automation")


def _ticks_after(server, location: str, since: float) -> int:
    sensors = server.graphql(SENSORS, {"location": location})["sensorsOrError"]["results"]
    [sensor] = [s for s in sensors if s["name"] == f"{location}_automation"]
    return sum(1 for t in sensor["sensorState"]["ticks"] if t["timestamp"] > since and t["status"] in ("SKIPPED", "SUCCESS"))


def _launchers_since(server, product_id: str, since: float) -> set[str]:
    """What launched each run that materialized the product since then: a schedule, a sensor or a person."""
    events = server.graphql(MATERIALIZATIONS, {"path": product_id.split(".")})["assetOrError"]["assetMaterializations"]
    launchers = set()
    for run_id in {e["runId"] for e in events if int(e["timestamp"]) / 1000 > since}:
        tags = {t["key"]: t["value"] for t in server.graphql(RUN_TAGS, {"runId": run_id})["runOrError"]["tags"]}
        launchers.add(tags.get("dagster/schedule_name") or tags.get("dagster/sensor_name") or "manual")
    return launchers


def alerted(alerts, product_id: str, state: str) -> bool:
    return any(a["product"] == product_id and a["state"] == state for a in alerts[1])


def test_automation_in_another_location_waits_for_a_failed_check(server, alerts):
    """marketing follows customers by automation (eager); orders.order_lines by its schedule.
    The daemon's status alerts sensor tells team-customers, and tells it again when it is fixed."""
    value_before = output_port.current("marketing.customer_lifetime_value")
    source = server.data_dir / "sources" / "customers" / "customers.csv"
    good = source.read_text()
    source.write_text(good + "99999,bad@example.com,Bad Row,NL,2021-01-01,vip\n")

    failed_at = time.time()
    result = server.mesh("materialize", "customers")
    assert result.returncode == 1, result.stdout + result.stderr
    assert output_port.blocked("customers.customer_profiles")

    # Several evaluations of the marketing location's automation sensor see the new,
    # failed customer_profiles materialization; none may build on it.
    wait_for(lambda: _ticks_after(server, "marketing", failed_at) >= 3, 180, "three automation ticks in marketing")
    assert output_port.current("marketing.customer_lifetime_value") == value_before
    wait_for(lambda: alerted(alerts, "customers.customer_profiles", "BLOCKED"), 120, "the alert that customer_profiles is blocked")
    [alert] = [a for a in alerts[1] if a["state"] == "BLOCKED"]
    assert (alert["owner"], alert["was"]) == ("team-customers", "ok")

    source.write_text(good)
    fixed = server.mesh("materialize", "customers")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    profiles = output_port.current("customers.customer_profiles")
    rebuilt = wait_for(
        lambda: (s := output_port.current("marketing.customer_lifetime_value")) != value_before and s,
        240,
        "customer_lifetime_value to follow the fix",
    )
    assert rebuilt.inputs["customers.customer_profiles"] == profiles.version
    # The step publishes before Dagster stores its materialization event: wait for the event.
    launchers = wait_for(
        lambda: _launchers_since(server, "marketing.customer_lifetime_value", failed_at), 60, "the rebuild's materialization event"
    )
    assert launchers == {"marketing_automation"}
    wait_for(lambda: alerted(alerts, "customers.customer_profiles", "ok"), 120, "the alert that customer_profiles is fixed")
    # order_lines' cron ("0 * * * *") may fire during the test; nothing else may build it.
    assert _launchers_since(server, "orders.order_lines", failed_at) <= {"order_lines_schedule"}
