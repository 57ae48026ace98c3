"""Append-only sources on real files and ports: a run reads only the files new since the
published version, and nothing read before is lost or read twice."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import pytest

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.contract import ContractError, load_domain, load_products
from platform_lib.factories.quality import asset_key
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from tests.helpers import read_published

LINES = "orders.raw_order_lines"


@pytest.fixture
def lines_append_only(domains_copy, mesh_dir):
    """The sample's order lines, their source made append-only; returns the sources folder."""
    contract = domains_copy / "orders" / "products" / "raw_order_lines.yaml"
    contract.write_text(contract.read_text().replace("max_bad_fraction: 0.001}", "max_bad_fraction: 0.001, append_only: true}"))
    assert products_by_id(load_mesh())[LINES].source.append_only
    return mesh_dir / "sources" / "orders"


def write_lines(path, first_line_no: int, count: int = 5) -> None:
    """Line `first_line_no` of orders 1 to `count`: new keys from 101 on (a sample order has a few lines), repeated below."""
    path.write_text("".join(
        json.dumps({"order_id": i, "line_no": first_line_no, "product_sku": f"SKU-{i:04d}", "quantity": 1, "unit_price": 9.5}) + "\n"
        for i in range(1, count + 1)
    ))


def all_lines(sources) -> list[tuple]:
    """What a full read of every file gives, straight from DuckDB."""
    columns = "order_id, line_no, product_sku, quantity, unit_price::DECIMAL(10,2)"
    return sorted(duckdb.sql(f"SELECT {columns} FROM read_json('{sources}/order_lines_*.jsonl')").fetchall(), key=repr)


def materialize(instance: dg.DagsterInstance | None = None):
    """Materialize the order lines alone."""
    [outcome] = materialize_products([products_by_id(load_mesh())[LINES]], instance or dg.DagsterInstance.ephemeral())
    return outcome


def metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(asset_key(LINES))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_run_reads_only_the_new_files_and_adds_their_rows(lines_append_only, capsys):
    sources = lines_append_only
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance=instance).ok
    first = output_port.current(LINES)
    assert sorted(first.source_files) == ["orders/order_lines_1.jsonl", "orders/order_lines_2.jsonl"]
    assert metadata(instance)["source_files"] == 2 and "source_files_read_before" not in metadata(instance)

    write_lines(sources / "order_lines_3.jsonl", 101)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance=instance).ok
    shown = metadata(instance)
    assert (shown["source_files"], shown["source_files_read_before"], shown["added_to_version"]) == (1, 2, first.version)
    assert read_published(LINES) == all_lines(sources)
    second = output_port.current(LINES)
    assert second.rows == first.rows + 5 and len(second.source_files) == 3
    assert main(["lineage", LINES]) == 0
    assert f"{LINES} {second.version} ({second.rows} rows, from 3 source files, contract" in capsys.readouterr().out

    # Nothing new: the same rows again, as a new version.
    assert materialize().ok
    assert output_port.current(LINES).version != second.version and read_published(LINES) == all_lines(sources)


def test_a_file_read_before_is_not_read_again_changed_or_gone_until_a_full_refresh(lines_append_only, capsys):
    sources = lines_append_only
    assert materialize().ok
    before = read_published(LINES)
    # The first file spoiled after it was read: not read again, noted, its rows as first read.
    (sources / "order_lines_1.jsonl").write_text("not JSON\n" * 50)
    write_lines(sources / "order_lines_3.jsonl", 101)
    assert main(["materialize", "orders.raw_order_lines"]) == 0
    out = capsys.readouterr().out
    assert ("orders.raw_order_lines: note: orders/order_lines_1.jsonl changed since read into an earlier version, whose rows of it "
            "stay as they were (append-only; `mesh materialize --full-refresh orders.raw_order_lines` reads every file again)") in out
    added = read_published(LINES)
    assert len(added) == len(before) + 5 and set(before) <= set(added)

    # A full refresh reads every file: the spoiled one fails the ingest, the last good version stays served.
    served = output_port.current(LINES).version
    assert main(["materialize", "--full-refresh", "orders.raw_order_lines"]) == 1
    assert "orders/order_lines_1.jsonl" in capsys.readouterr().out
    assert output_port.current(LINES).version == served

    # The second file archived: its rows stay; back with the same size and time, it is not read twice.
    shutil.move(sources / "order_lines_2.jsonl", sources.parent / "order_lines_2.jsonl")
    assert materialize().ok
    assert read_published(LINES) == added
    shutil.move(sources.parent / "order_lines_2.jsonl", sources / "order_lines_2.jsonl")
    assert materialize().ok
    assert read_published(LINES) == added


def test_a_new_file_that_fails_a_check_is_read_again_once_fixed(lines_append_only):
    sources = lines_append_only
    assert materialize().ok
    first = output_port.current(LINES)
    write_lines(sources / "order_lines_3.jsonl", 1)  # line 1 of orders 1 to 5 again: the primary key check fails
    refused = materialize()
    assert refused.failed == ["primary_key"] and output_port.current(LINES) == first
    assert (f"The rows checked were {first.version}'s and those of orders/order_lines_3.jsonl (append-only), "
            "which the next run reads again.") in refused.message
    write_lines(sources / "order_lines_3.jsonl", 101)
    assert materialize().ok
    assert read_published(LINES) == all_lines(sources)


def test_a_rule_added_to_the_contract_is_checked_on_the_rows_read_before(lines_append_only, domains_copy):
    assert materialize().ok
    first = output_port.current(LINES)
    contract = domains_copy / "orders" / "products" / "raw_order_lines.yaml"
    contract.write_text(contract.read_text() + "quality:\n  - {expect: expect_column_values_to_be_between, column: quantity, max_value: 0}\n")
    refused = materialize()
    assert refused.failed == ["column_values_to_be_between__quantity"] and output_port.current(LINES) == first
    assert f"The rows checked were {first.version}'s alone (append-only, no new file)." in refused.message


def test_a_contract_whose_columns_changed_reads_every_file(lines_append_only, domains_copy):
    assert materialize().ok
    contract = domains_copy / "orders" / "products" / "raw_order_lines.yaml"
    contract.write_text(contract.read_text() + "  - {name: discount, type: DOUBLE}\n")
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance=instance).ok
    assert metadata(instance)["source_files"] == 2 and "source_files_read_before" not in metadata(instance)
    assert "discount" in duckdb.sql(f"SELECT * FROM '{output_port.current(LINES).path}'").columns


def test_a_public_product_with_pii_cannot_be_append_only(tmp_path):
    folder = tmp_path / "shop"
    (folder / "products").mkdir(parents=True)
    (folder / "domain.yaml").write_text("name: shop\nowner: team-shop\n")
    (folder / "products" / "visits.yaml").write_text(
        "description: Visits.\naccess: public\nsource: {format: csv, path: shop/*.csv, append_only: true}\n"
        "columns:\n  - {name: email, type: VARCHAR, pii: true}\n"
    )
    with pytest.raises(ContractError, match=r"visits.yaml: product shop.visits: field 'source.append_only': it adds rows to the published version, "
                       r"but this public product's port masks its PII column email"):
        load_products(load_domain(folder))
