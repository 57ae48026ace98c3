"""`mesh status` on real output ports: never published, served, warned by its checks, blocked, failed, stale, unreadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.status import BLOCKED, FAILED, NEVER, OK, STALE, UNREADABLE, WARN, status
from platform_lib.storage import REPO_ROOT, warehouse_path
from tests.helpers import add_csv_row

CUSTOMERS = ["customers.raw_customers", "customers.customer_profiles"]


def states(out: str) -> dict[str, list[str]]:
    """The table's rows by product: state and the cells after it."""
    rows = [line.split("  ") for line in out.split("\n\n")[0].splitlines()[1:]]
    return {row[0]: [cell.strip() for cell in row[1:] if cell.strip()] for row in rows}


def test_status_says_what_each_port_serves_and_exits_1_on_a_problem(mesh_dir, capsys):
    assert main(["status"]) == 1
    assert {row[0] for row in states(capsys.readouterr().out).values()} == {NEVER}

    assert main(["materialize", "--quiet", "customers"]) == 0
    capsys.readouterr()
    assert main(["status", "customers"]) == 0
    shown = states(capsys.readouterr().out)
    assert shown == {
        "customers.customer_profiles": [OK, output_port.current("customers.customer_profiles").version, shown["customers.customer_profiles"][2], "26h (warn 24h)"],
        "customers.raw_customers": [OK, output_port.current("customers.raw_customers").version, shown["customers.raw_customers"][2]],
    }
    assert shown["customers.raw_customers"][2].endswith("s"), "published seconds ago"

    # A segment the contract does not know: customer_profiles' blocking check fails, its port still serves the last good version.
    served = output_port.current("customers.customer_profiles").version
    add_csv_row(mesh_dir, "999999,bad@example.com,Bad Row,NL,2024-01-01,vip")
    assert main(["materialize", "--quiet", "customers"]) == 1
    capsys.readouterr()
    assert main(["status", "customers.customer_profiles+"]) == 1
    out = capsys.readouterr().out
    assert main(["status", "--json", "customers.customer_profiles"]) == 1
    [record] = json.loads(capsys.readouterr().out)
    assert (record["state"], record["version"], record["published_at"]) == (BLOCKED, served, output_port.current("customers.customer_profiles").published_at)
    assert record["age_seconds"] >= 0 and record["slo"] == "26h (warn 24h)" and "column_values_to_be_in_set__segment failed" in record["why"]
    assert states(out)["customers.customer_profiles"][:2] == [BLOCKED, served]
    blocked = output_port.blocked("customers.customer_profiles")
    assert (f"customers.customer_profiles: a candidate was not published (run {blocked['run_id']} at {blocked['at']}: "
            f"column_values_to_be_in_set__segment failed); consumers read {served}") in out
    assert set(states(out)) == {"customers.customer_profiles", "marketing.customer_lifetime_value", "marketing.segment_revenue", "orders.order_lines"}


def test_a_version_published_despite_failed_warn_checks_is_warn_naming_them_without_values(mesh_dir, domains_copy, capsys):
    contract = domains_copy / "customers/products/customer_profiles.yaml"
    rule = '  - {expect: expect_column_values_to_match_regex, column: email, regex: "^[^@ ]+@[^@ ]+$", severity: warn, name: email_format}\n'
    contract.write_text(contract.read_text() + rule)
    add_csv_row(mesh_dir, "999999,leaked secret@example.com,Leaked Name,NL,2024-01-01,consumer")  # one row: the blocking rule allows 1%
    assert main(["materialize", "--quiet", "customers"]) == 0
    capsys.readouterr()
    assert main(["status", "customers"]) == 0, "a warning is not a problem"
    out = capsys.readouterr().out
    served = output_port.current("customers.customer_profiles").version
    assert states(out)["customers.customer_profiles"][:2] == [WARN, served]
    assert f"customers.customer_profiles: {served} failed checks of warn severity: email_format" in out
    assert states(out)["customers.raw_customers"][0] == OK
    assert main(["status", "--json", "customers.customer_profiles"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown)[0]["failed_warn_checks"] == ["email_format"]
    assert "secret" not in out + shown, "the failing value of a PII column is never shown"

    add_csv_row(mesh_dir, "999998,bad@example.com,Bad Row,NL,2024-01-01,vip")  # now a blocking check fails too
    assert main(["materialize", "--quiet", "customers"]) == 1
    blocked = status(products_by_id(load_mesh())["customers.customer_profiles"])
    assert blocked.state == BLOCKED and f"{served} failed checks of warn severity: email_format" in blocked.why, "still what consumers read"

    source = mesh_dir / "sources" / "customers" / "customers.csv"
    source.write_text("".join(source.read_text().splitlines(keepends=True)[:-2]))
    assert main(["materialize", "--quiet", "customers"]) == 0
    assert status(products_by_id(load_mesh())["customers.customer_profiles"]).state == OK


def test_a_served_version_older_than_the_freshness_slo_is_stale(mesh_dir, capsys):
    assert main(["materialize", "--quiet", "customers"]) == 0
    products = products_by_id(load_mesh())
    profiles = products["customers.customer_profiles"]  # freshness: fail_after 26h, warn_after 24h
    published = datetime.fromisoformat(output_port.current(profiles.id).published_at)
    assert status(profiles, published + timedelta(hours=23)).state == OK
    warned = status(profiles, published + timedelta(hours=25))
    assert (warned.state, warned.age, warned.why) == (WARN, "1d", "older than 24h, its SLO's warning")
    stale = status(profiles, published + timedelta(hours=27))
    assert (stale.state, stale.why) == (STALE, "older than its freshness SLO of 26h")
    # raw_customers has no SLO: never stale.
    assert status(products["customers.raw_customers"], published + timedelta(days=400)).state == OK


def test_a_version_that_failed_warn_checks_still_turns_stale(mesh_dir, domains_copy, capsys):
    contract = domains_copy / "customers/products/customer_profiles.yaml"
    contract.write_text(contract.read_text() + "  - {expect: expect_column_values_to_be_in_set, column: country, value_set: [XX], severity: warn}\n")
    assert main(["materialize", "--quiet", "customers"]) == 0
    profiles = products_by_id(load_mesh())["customers.customer_profiles"]  # freshness: fail_after 26h
    served = output_port.current(profiles.id)
    assert served.failed_warn_checks
    stale = status(profiles, datetime.fromisoformat(served.published_at) + timedelta(hours=27))
    assert stale.state == STALE, "a warning must not hide that the version is past its SLO"
    assert "failed checks of warn severity" in stale.why and "older than its freshness SLO of 26h" in stale.why


def test_a_damaged_port_is_unreadable_and_the_others_are_still_shown(mesh_dir, capsys):
    assert main(["materialize", "--quiet", "customers"]) == 0
    pointer = output_port.port_dir("customers.raw_customers") / output_port.POINTER
    pointer.write_text("{ not json")
    capsys.readouterr()
    assert main(["status", "customers"]) == 1
    out = capsys.readouterr().out
    assert states(out)["customers.raw_customers"] == [UNREADABLE]
    assert states(out)["customers.customer_profiles"][0] == OK
    assert f"customers.raw_customers: {pointer}: product customers.raw_customers: not valid JSON" in out

    data = output_port.current("customers.customer_profiles").path
    data.unlink()  # the pointer names a version whose data is gone: consumers stop at it
    gone = status(products_by_id(load_mesh())["customers.customer_profiles"])
    assert (gone.state, gone.version) == (UNREADABLE, data.parent.name) and f"whose data {data} is missing" in gone.why
    assert main(["materialize", "--quiet", "customers"]) == 0
    assert status(products_by_id(load_mesh())["customers.customer_profiles"]).state == OK

    failed = output_port.port_dir("customers.customer_profiles") / output_port.FAILED
    failed.write_text("{")
    assert status(products_by_id(load_mesh())["customers.customer_profiles"]).state == UNREADABLE
    assert main(["materialize", "--quiet", "customers"]) == 0, "it stops no one"
    assert not failed.exists()


def test_a_run_that_fails_before_its_checks_is_failed_until_one_gets_to_them(mesh_dir, capsys):
    assert main(["materialize", "--quiet", "customers"]) == 0
    served = output_port.current("customers.raw_customers").version
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    export = source.read_text(encoding="utf-8")
    source.write_text(export.splitlines()[0] + "\n", encoding="utf-8")  # an export that lost its rows
    assert main(["materialize", "--quiet", "customers"]) == 1
    capsys.readouterr()
    assert main(["status", "--json", "customers"]) == 1
    records = {r["product"]: r for r in json.loads(capsys.readouterr().out)}
    failed = output_port.failed("customers.raw_customers")
    assert (records["customers.raw_customers"]["state"], records["customers.raw_customers"]["version"]) == (FAILED, served)
    assert records["customers.raw_customers"]["why"] == (
        f"the latest run {failed['run_id']} at {failed['at']} failed before its checks: customers.raw_customers: the source has no "
        f"data rows ({source}); refusing to replace the product with nothing; consumers read {served}"
    )
    assert records["customers.customer_profiles"]["state"] == OK, "not built on top of it, and still as good as before"

    # Something else than the source: the domain's DuckDB file is damaged. The error says what to do, on one line.
    source.write_text(export, encoding="utf-8")
    warehouse = warehouse_path("customers")
    warehouse.write_bytes(b"not a DuckDB file" * 1000)
    assert main(["materialize", "--quiet", "customers.raw_customers"]) == 1
    error = output_port.failed("customers.raw_customers")["error"]
    assert error.startswith(f"customers.raw_customers: domain customers: cannot open its DuckDB file {warehouse} (IO Error: ")
    assert "move it away: the output ports keep every published version" in error and "\n" not in error
    assert status(products_by_id(load_mesh())["customers.raw_customers"]).state == FAILED

    warehouse.unlink()
    assert main(["materialize", "--quiet", "customers"]) == 0
    assert output_port.failed("customers.raw_customers") is None
    capsys.readouterr()
    assert main(["status", "customers"]) == 0


def test_a_domain_that_does_not_load_still_shows_what_its_ports_serve(mesh_dir, domains_copy, capsys):
    assert main(["materialize", "--quiet", "customers"]) == 0
    add_csv_row(mesh_dir, "99999,bad@example.com,Bad Row,NL,2021-01-01,vip")
    assert main(["materialize", "--quiet", "customers"]) == 1  # customer_profiles blocked
    contract = domains_copy / "customers/products/customer_profiles.yaml"
    contract.write_text(contract.read_text() + "ownr: team-x\n")
    capsys.readouterr()

    assert main(["status", "--json"]) == 2
    out, err = capsys.readouterr()
    assert "cannot load domain customers" in err and "ownr" in err
    shown = {s["product"]: s for s in json.loads(out)}
    assert shown["customers.customer_profiles"]["state"] == BLOCKED
    assert shown["customers.raw_customers"]["state"] == OK
    assert "domain customers does not load: its freshness SLO is unknown" in shown["customers.customer_profiles"]["why"]
    assert shown["orders.raw_orders"]["state"] == NEVER, "the other domains as ever"

    for named in ("customers.raw_customers", "+customers.raw_customers"):
        assert main(["status", named]) == 2
        assert list(states(capsys.readouterr().out)) == ["customers.raw_customers"], named


def test_a_domain_a_policy_refuses_is_said_as_its_code_location_would(mesh_dir, domains_copy, capsys):
    """Its location does not load, so nothing builds its products: a probe must hear of it."""
    assert main(["materialize", "--quiet", "customers"]) == 0
    contract = domains_copy / "customers/products/raw_customers.yaml"
    contract.write_text("\n".join('description: ""' if line.startswith("description:") else line for line in contract.read_text().splitlines()))
    capsys.readouterr()

    assert main(["status", "customers"]) == 2
    out, err = capsys.readouterr()
    assert "cannot load domain customers: 1 policy violation" in err and "has an empty description" in err
    assert states(out)["customers.raw_customers"][0] == OK
    assert main(["status", "orders"]) == 1  # never published; the refused domain not asked about


def test_a_killed_build_whose_pid_another_process_took_is_still_failed(mesh_dir):
    """After a reboot, or in a container restarted under the same name, the dead build's pid
    may belong to a live process: one that started at another time is not the build."""
    product_id = "customers.raw_customers"
    record = output_port.port_dir(product_id) / output_port.BUILDING
    marked = subprocess.run(
        [sys.executable, "-c", f"from platform_lib import output_port; output_port.mark_building({product_id!r}, 'the-killed-run')"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=True,
    )  # a process that records its build, then ends without an outcome, as a killed one does
    assert marked.returncode == 0 and output_port.failed(product_id)["run_id"] == "the-killed-run"
    build = json.loads(record.read_text())
    record.write_text(json.dumps({**build, "pid": os.getpid()}))  # its pid, now this live process's
    died = output_port.failed(product_id)
    assert died and died["run_id"] == "the-killed-run", "a live process that is not the build hid the dead build"

    output_port.mark_building(product_id, "a-run-going-on")  # this very process, alive: building, not failed
    assert output_port.failed(product_id)["run_id"] == "the-killed-run"  # the dead one's record, kept until an outcome
    assert json.loads(record.read_text())["run_id"] == "a-run-going-on"


def test_a_runs_outcome_leaves_the_build_record_of_another_run_of_the_product(mesh_dir):
    """Two runs of one product without a pool: the first to end must not wipe the record of
    the other, which may yet be killed (status would then never say so)."""
    product_id = "customers.raw_customers"
    output_port.mark_building(product_id, "run-a")
    subprocess.run(
        [sys.executable, "-c", f"from platform_lib import output_port; output_port.mark_building({product_id!r}, 'run-b')"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=True,
    )  # run b records its build after run a, then dies without an outcome
    output_port.mark_blocked(product_id, "run-a", ["schema"])
    assert output_port.failed(product_id)["run_id"] == "run-b"
    output_port.mark_failed(product_id, "run-b", "its own outcome, after all")
    assert not (output_port.port_dir(product_id) / output_port.BUILDING).exists()


def test_a_build_in_another_pid_namespace_is_not_judged_from_this_one(mesh_dir):
    """A container sharing the host's name has its own pids: one not running here may run there."""
    product_id = "customers.raw_customers"
    record = output_port.port_dir(product_id) / output_port.BUILDING
    subprocess.run(
        [sys.executable, "-c", f"from platform_lib import output_port; output_port.mark_building({product_id!r}, 'run-elsewhere')"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=True,
    )
    build = json.loads(record.read_text())
    assert output_port.failed(product_id)["run_id"] == "run-elsewhere"  # this namespace's process, gone
    record.write_text(json.dumps({**build, "pid_namespace": "pid:[1]"}))
    assert output_port.failed(product_id) is None


def test_a_run_building_a_product_now_is_said_without_changing_its_state(mesh_dir, capsys):
    product_id = "customers.raw_customers"
    output_port.mark_building(product_id, "a-run-going-on")  # this very process: alive
    assert main(["status", "--json", product_id]) == 1
    [record] = json.loads(capsys.readouterr().out)
    assert (record["state"], record["building_run"]) == (NEVER, "a-run-going-on")
    assert record["why"].startswith("run a-run-going-on has been building it since ")

    assert main(["materialize", "--quiet", product_id]) == 0
    output_port.mark_building(product_id, "the-next-run")
    capsys.readouterr()
    assert main(["status", product_id]) == 0
    out = capsys.readouterr().out
    assert states(out)[product_id][0] == OK and f"{product_id}: run the-next-run has been building it since " in out


def test_status_and_validate_read_dbt_sources_without_importing_dbt(mesh_dir):
    """Every `mesh` command loads the mesh, a dbt product's sources too: importing dbt for
    that (through dagster-dbt, about 1 s) would slow each one down."""
    script = "import sys\nfrom platform_lib.cli import main\nmain(['validate']); main(['status'])\nprint(sorted({'dbt', 'dagster_dbt'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT).stdout
    assert out.splitlines()[-1] == "[]"
