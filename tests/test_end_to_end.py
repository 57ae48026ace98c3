"""The whole sample mesh, materialized in-process on real DuckDB files under tmp_path."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import dagster as dg
import duckdb
import pytest

from platform_lib import output_port, storage
from platform_lib.cli import main
from platform_lib.mesh import load_mesh, products_by_id
from tests.helpers import add_csv_row, read_published, run
from tests.reliability.damage import rewrite_csv

SOURCES = {
    "customers": "read_csv('{s}/customers/customers.csv')",
    "orders": "read_parquet('{s}/orders/orders_*.parquet')",
    "lines": "read_json('{s}/orders/order_lines_*.jsonl')",
}


def expected(sql: str, mesh_dir) -> list[tuple]:
    """Compute an expected answer straight from the source files, independently of the platform."""
    tables = {name: reader.format(s=mesh_dir / "sources") for name, reader in SOURCES.items()}
    with duckdb.connect() as connection:
        return connection.execute(sql.format(**tables)).fetchall()


def test_every_product_is_published_with_checks_passed(mesh_dir):
    outcomes = run()
    assert {o.status for o in outcomes.values()} == {"published"}, outcomes
    assert all(o.passed and not o.failed and not o.warned and not o.notes for o in outcomes.values())
    (lines,) = expected("SELECT count(*) FROM {lines}", mesh_dir)
    assert outcomes["orders.order_lines"].rows == lines[0]
    assert output_port.current("orders.order_lines").rows == lines[0]


def test_published_values_match_the_sources(mesh_dir):
    run()
    revenue = expected(
        """SELECT o.customer_id, sum(l.quantity * CAST(l.unit_price AS DECIMAL(10, 2))) FROM {lines} l JOIN {orders} o USING (order_id)
        WHERE o.status IN ('shipped', 'delivered') GROUP BY 1 ORDER BY 1""",
        mesh_dir,
    )
    published = sorted((row[0], row[3]) for row in read_published("marketing.customer_lifetime_value"))
    assert published == revenue


def test_public_port_hashes_pii_and_records_provenance(mesh_dir):
    run()
    emails = [row[1] for row in read_published("customers.customer_profiles")]
    assert not any("@" in e for e in emails) and all(len(e) == 64 for e in emails)
    raw_emails = [row[1] for row in read_published("customers.raw_customers")]
    assert all("@" in e for e in raw_emails), "internal products keep their values inside the domain"
    lines = output_port.current("orders.order_lines")
    assert lines.inputs == {
        "orders.raw_orders": output_port.current("orders.raw_orders").version,
        "orders.raw_order_lines": output_port.current("orders.raw_order_lines").version,
        "customers.customer_profiles": output_port.current("customers.customer_profiles").version,
    }


def test_domain_database_serves_views_over_the_ports(mesh_dir):
    run()
    with duckdb.connect(str(storage.warehouse_path("orders")), read_only=True) as connection:
        own = connection.execute("SELECT count(*) FROM main.order_lines").fetchone()[0]
        upstream = connection.execute("SELECT count(*) FROM customers.customer_profiles").fetchone()[0]
        tables = {r[0] for r in connection.execute("SELECT schema_name FROM duckdb_tables()").fetchall()}
    assert own == output_port.current("orders.order_lines").rows
    assert upstream == output_port.current("customers.customer_profiles").rows
    assert "customers" not in tables, "another domain's data is a view over its port, never a copy"


def test_a_data_folder_named_like_a_partition_changes_no_product(mesh_dir, tmp_path, monkeypatch):
    """DuckDB takes a folder named `key=value` anywhere in a path for a partition and adds a
    column `key` to what it reads: under /mnt/env=prod/, every source and every port would
    have a column `env` that no contract names."""
    data = tmp_path / "env=prod" / "mesh"
    shutil.copytree(mesh_dir / "sources", data / "sources")
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    outcomes = run()
    assert {o.status for o in outcomes.values()} == {"published"} and not any(o.notes for o in outcomes.values()), outcomes
    served = [c.name for c in products_by_id(load_mesh())["customers.customer_profiles"].served_columns]
    with duckdb.connect(str(storage.warehouse_path("marketing")), read_only=True) as connection:
        assert list(storage.column_types(connection, "customers.customer_profiles")) == served


def test_rerun_publishes_a_new_version_and_prunes_beyond_retention_once_replaced_for_the_grace(mesh_dir):
    for _ in range(7):
        run("customers")
    # raw_customers keeps 5 snapshots (its contract's retention), but a version replaced less
    # than the grace (1h) ago stays: a consumer may have read the pointer just before it moved.
    port = output_port.port_dir("customers.raw_customers")
    versions = output_port.versions("customers.raw_customers")
    assert len(versions) == 7
    hours_ago = time.time() - 7200
    for version in versions:
        os.utime(port / version, (hours_ago, hours_ago))
    run("customers")
    kept = output_port.versions("customers.raw_customers")
    # the newest 5: the 4 most recent of the aged ones and the new one, which replaced them only now
    assert kept[:-1] == versions[-4:] and len(kept) == 5
    pointer = json.loads((port / "current.json").read_text())
    assert pointer["version"] == kept[-1]


def test_cli_materializes_and_prints_a_summary(mesh_dir, capsys):
    assert main(["materialize", "customers"]) == 0
    out = capsys.readouterr().out
    assert "customers.customer_profiles" in out and "published" in out
    assert main(["materialize", "nosuchdomain"]) == 2


def test_a_dry_run_lists_what_a_selection_builds_in_dependency_order_and_builds_nothing(mesh_dir, capsys):
    assert main(["materialize", "--dry-run", "customers.raw_customers+"]) == 0
    assert capsys.readouterr().out.split() == [
        "customers.raw_customers", "customers.customer_profiles", "orders.order_lines", "marketing.customer_lifetime_value",
        "marketing.segment_revenue",
    ]
    assert output_port.current("customers.raw_customers") is None and not storage.warehouse_path("customers").exists()


def test_cli_materializes_single_products_on_their_inputs_published_versions(mesh_dir, capsys):
    assert main(["materialize", "customers.customer_profiles"]) == 1
    assert ("customers.customer_profiles: input customers.raw_customers has never been published; materialize it first"
            in capsys.readouterr().out)
    assert main(["materialize", "customers"]) == 0
    raw = output_port.current("customers.raw_customers").version
    capsys.readouterr()
    assert main(["materialize", "customers.customer_profiles"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["customers.customer_profiles", "published"]]
    assert output_port.current("customers.raw_customers").version == raw
    assert main(["materialize", "customers.no_such_product", "customers"]) == 2
    assert "unknown domain(s) or product(s): customers.no_such_product;" in capsys.readouterr().err


def test_an_optional_column_null_in_every_row_is_noted_in_the_summary(mesh_dir, capsys):
    """How a field renamed at the source looks: the product publishes, and the command says so."""
    rewrite_csv(mesh_dir / "sources", "SELECT * REPLACE (NULL AS full_name) FROM t")
    assert main(["materialize", "customers"]) == 0
    out = capsys.readouterr().out
    assert "customers.raw_customers: note: optional column full_name is NULL in every row (a field renamed at the source?)" in out
    assert "customers.customer_profiles: note" not in out


def test_quarantined_rows_are_noted_in_the_summary_and_listed_by_mesh_quarantine(mesh_dir, capsys):
    assert main(["quarantine", "customers.raw_customers"]) == 2
    assert "customers.raw_customers has not been ingested here yet" in capsys.readouterr().err
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    lines = source.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[4], "someday")  # line 3: a signup_date that is no date
    source.write_text("\n".join(lines) + "\n")
    assert main(["materialize", "customers"]) == 0
    out = capsys.readouterr().out
    assert "customers.raw_customers: note: 1 source row(s) quarantined, within max_bad_fraction (`mesh quarantine customers.raw_customers`" in out
    assert main(["quarantine", "customers.raw_customers"]) == 0
    header, row, withheld = capsys.readouterr().out.splitlines()[1:]
    assert header.split() == ["file", "line", "column", "reason", "row"]
    email = lines[2].split(",")[1]
    assert row.split()[:3] == ["customers/customers.csv", "3", "signup_date"] and row.endswith(" (withheld)") and email not in row
    assert withheld == "rows withheld: they may hold values of PII columns email, full_name (--show-pii prints them)"
    assert main(["quarantine", "--show-pii", "customers.raw_customers"]) == 0
    assert capsys.readouterr().out.splitlines()[2].endswith(" " + lines[2])  # the line as read, with its e-mail address
    rewrite_csv(mesh_dir / "sources", "SELECT * REPLACE (CASE WHEN customer_id::INT % 10 = 0 THEN 'someday' ELSE signup_date END AS signup_date) FROM t")
    assert main(["materialize", "customers"]) == 1  # 10% bad rows: above max_bad_fraction, the ingest fails
    assert "(`mesh quarantine customers.raw_customers` lists them)" in capsys.readouterr().out
    assert main(["quarantine", "customers.raw_customers", "--limit", "2"]) == 0
    listed = capsys.readouterr().out.splitlines()
    bad = 1 + len(lines[1:]) // 10  # line 3, and every tenth customer
    assert listed[0].startswith(f"customers.raw_customers: {bad} row(s) quarantined") and listed[-1] == f"... and {bad - 2} more (--limit)"
    assert main(["quarantine", "customers.customer_profiles"]) == 2
    assert "customers.customer_profiles is not an ingest product" in capsys.readouterr().err
    storage.warehouse_path("customers").write_bytes(b"no DuckDB file " * 1000)
    assert main(["quarantine", "customers.raw_customers"]) == 2
    assert "mesh quarantine: domain customers: cannot open its DuckDB file" in capsys.readouterr().err


def test_the_ui_shows_where_the_first_quarantined_rows_are_and_why(mesh_dir):
    add_csv_row(mesh_dir, "9001,bad@example.org,Bad Row,GB,someday,consumer")
    with dg.DagsterInstance.ephemeral() as instance:
        run("customers", instance=instance)
        event = instance.get_latest_materialization_event(dg.AssetKey(["customers", "raw_customers"]))
    table = event.asset_materialization.metadata["first_quarantined_rows"].value
    lines = len((mesh_dir / "sources" / "customers" / "customers.csv").read_text().splitlines())
    assert [(r.data["file"], r.data["line"], r.data["column"]) for r in table.records] == [("customers/customers.csv", lines, "signup_date")]
    assert "someday" in table.records[0].data["reason"] and [c.name for c in table.schema.columns] == ["file", "line", "column", "reason"]


def test_a_source_file_cut_short_is_noted_in_the_summary(mesh_dir, capsys):
    """An export read while it is still being written ends mid-line, and a CSV row cut inside
    its last field still fits the contract. Some writers leave the final newline out, so the
    product publishes, and the summary says which file to look at."""
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    source.write_text(source.read_text().removesuffix("\n"))
    assert main(["materialize", "customers"]) == 0
    out = capsys.readouterr().out
    note = "customers.raw_customers: note: no newline at the end of customers/customers.csv: a last line cut short (a file still being written)?"
    assert f"{note}\n" in out
    assert out.count("no newline at the end") == 1, "only the product reading the file"


def test_a_json_field_the_contract_does_not_read_is_noted_in_the_summary(mesh_dir, capsys):
    """The order service renamed unit_price to price in one file: the product blocks (unit_price is required),
    and the summary says where the value went."""
    path = mesh_dir / "sources" / "orders" / "order_lines_2.jsonl"
    path.write_text("".join(
        json.dumps({("price" if k == "unit_price" else k): v for k, v in json.loads(line).items()}) + "\n"
        for line in path.read_text().splitlines()
    ))
    assert main(["materialize", "customers", "orders"]) == 1
    out = capsys.readouterr().out
    assert "orders.raw_order_lines: note: the source has column price, which the contract does not read" in out


def test_stdout_holds_only_the_summary_and_what_steps_print_goes_to_stderr(mesh_dir, capfd):
    assert main(["materialize"]) == 0
    out, err = capfd.readouterr()
    assert out.splitlines()[0].split() == ["product", "status", "rows", "checks", "version"] and len(out.splitlines()) == 8
    assert "Running with dbt=" in err and "Done. PASS=" in err, "dagster-dbt prints dbt's log lines"


def progress_lines(err: str) -> list[str]:
    """The lines `mesh materialize` prints as steps start and end, without their time of day."""
    return [line[10:] for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d  (building |[a-z_]+\.[a-z_]+: )", line)]


def test_progress_lines_say_what_each_step_builds_and_how_it_ended_as_the_run_goes(mesh_dir, capfd):
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    export = source.read_text()
    source.write_text(export.splitlines()[0] + "\n")
    assert main(["materialize", "customers", "orders.raw_order_lines"]) == 1
    out, err = capfd.readouterr()
    (lines,) = expected("SELECT count(*) FROM {lines}", mesh_dir)
    progress = progress_lines(err)
    assert [re.sub(r"\(\d+\.\d s\)", "(S)", line) for line in progress] == [
        "building customers.raw_customers",
        f"customers.raw_customers: failed (S): the source has no data rows ({source}); refusing to replace the product with nothing",
        "building orders.raw_order_lines",
        f"orders.raw_order_lines: published, {lines[0]:,} rows, checks 3 ok (S)",
    ], err
    # The summary is still the whole story, on stdout; customer_profiles, never started, is only there.
    assert "customers.customer_profiles: not built: customers.raw_customers was not published in this run" in out

    source.write_text(export)
    assert main(["materialize", "--quiet", "customers", "orders"]) == 0
    assert capfd.readouterr().err == "", "neither progress lines nor dbt's"


def test_the_summary_says_why_and_only_an_unexpected_error_prints_its_stack(mesh_dir, capfd):
    source = mesh_dir / "sources" / "customers" / "customers.csv"
    source.write_text(source.read_text().splitlines()[0] + "\n")  # an export that lost its rows: refused
    assert main(["materialize", "--quiet", "customers"]) == 1
    out, err = capfd.readouterr()
    assert "customers.raw_customers: the source has no data rows" in out
    assert "customers.customer_profiles: not built: customers.raw_customers was not published in this run" in out
    assert err == ""

    source.write_text(source.read_text() + "1,a@example.org,A,GB,2021-01-01,consumer\n")
    port = mesh_dir / "published" / "customers" / "raw_customers"
    shutil.rmtree(port)  # it holds the failed run's record
    port.write_text("")  # a file where the port's folder goes: a crash no check explains
    assert main(["materialize", "customers"]) == 1
    out, err = capfd.readouterr()
    assert f"customers.raw_customers: NotADirectoryError: [Errno 20] Not a directory: '{port / 'building.json'}'" in out
    assert "customers.raw_customers: an unexpected error; its stack:" in err and "Stack Trace" in err


def test_a_scale_or_a_limit_not_above_zero_is_refused_by_the_command_line(mesh_dir, monkeypatch, capsys):
    """A scale of 0 wrote empty sample files over the good ones; a bad $MESH_SCALE stops sample-data alone."""
    sources = sorted(p.stat().st_size for p in (mesh_dir / "sources").rglob("*.*"))
    for argv in (["sample-data", "--scale", "0"], ["sample-data", "--scale", "-1"], ["quarantine", "--limit", "-1", "customers.raw_customers"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2 and "above 0" in capsys.readouterr().err
    assert sorted(p.stat().st_size for p in (mesh_dir / "sources").rglob("*.*")) == sources
    monkeypatch.setenv("MESH_SCALE", "lots")
    assert main(["status", "--json"]) == 1  # nothing published yet
    with pytest.raises(SystemExit):
        main(["sample-data"])
    assert "argument --scale: 'lots' is not a number above 0" in capsys.readouterr().err
