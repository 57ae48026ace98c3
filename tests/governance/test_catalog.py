"""`mesh catalog` after real runs, one with a real bad row; the ODCS export checked by datacontract-cli."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from open_data_contract_standard.model import OpenDataContractStandard

from platform_lib.cli import main
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.odcs import to_odcs, write_odcs
from tests.helpers import add_csv_row

CUSTOMERS = ["customers.raw_customers", "customers.customer_profiles"]
BAD_ROW = "999999,bad@example.com,Bad Row,NL,2024-01-01,vip"


@pytest.fixture
def catalog(mesh_dir, tmp_path, monkeypatch) -> dict:
    """Customers published once, then a source row with an unknown segment blocks customer_profiles."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    products = products_by_id(load_mesh())
    assert all(o.ok for o in materialize_products([products[i] for i in CUSTOMERS]))
    add_csv_row(mesh_dir, BAD_ROW)
    second = {o.product: o for o in materialize_products([products[i] for i in CUSTOMERS])}
    assert second["customers.customer_profiles"].failed == ["column_values_to_be_in_set__segment"]
    assert main(["catalog", "--out", str(tmp_path / "catalog")]) == 0
    return json.loads((tmp_path / "catalog" / "catalog.json").read_text())


def test_the_catalog_shows_contracts_lineage_versions_and_the_failed_check(catalog, tmp_path):
    assert [d["name"] for d in catalog["domains"]] == ["customers", "marketing", "orders"]
    by_id = {p["id"]: p for p in catalog["products"]}
    assert sorted(by_id) == sorted(products_by_id(load_mesh()))
    profiles = by_id["customers.customer_profiles"]
    assert (profiles["owner"], profiles["access"], profiles["upstreams"]) == ("team-customers", "public", ["customers.raw_customers"])
    assert profiles["consumers"] == ["marketing.customer_lifetime_value", "orders.order_lines"]
    assert profiles["contract"]["freshness"]["fail_after"] == "26h"
    assert profiles["blocked"]["failed_checks"] == ["column_values_to_be_in_set__segment"]
    statuses = {c["check"]: c["status"] for c in profiles["checks"]}
    assert statuses["column_values_to_be_in_set__segment"] == "FAILED" and statuses["schema"] == "SUCCEEDED"
    # Consumers still read the first, good version; the raw product with the bad row was published.
    raw = by_id["customers.raw_customers"]
    assert profiles["published"]["inputs"]["customers.raw_customers"] != raw["published"]["version"]
    assert by_id["orders.order_lines"]["published"] is None
    assert profiles["port"]["pointer"].endswith("published/customers/customer_profiles/current.json")
    assert profiles["port"]["data"] == profiles["port"]["pointer"].replace("current.json", f"{profiles['published']['version']}/data.parquet")
    assert Path(profiles["port"]["data"]).is_file() and by_id["orders.order_lines"]["port"]["data"] is None

    page = (tmp_path / "catalog" / "index.html").read_text()
    for text in ("customers.customer_profiles", "team-customers", "Blocked: column_values_to_be_in_set__segment", "never published",
                 f"now <code>read_parquet('{profiles['port']['data']}', hive_partitioning = false)</code>"):
        assert text in page


def test_a_folder_that_cannot_be_written_is_named_in_one_line(mesh_dir, tmp_path, capsys):
    taken = tmp_path / "a_file"
    taken.write_text("not a folder")
    assert main(["catalog", "--out", str(taken / "catalog")]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"mesh catalog: cannot write {taken / 'catalog'}")


def test_every_contract_exports_to_odcs_that_datacontract_lint_accepts(tmp_path):
    products = [p for d in load_mesh() for p in d.products]
    datacontract = Path(sys.executable).parent / "datacontract"
    for product, path in zip(products, write_odcs(products, tmp_path)):
        lint = subprocess.run([str(datacontract), "lint", str(path)], capture_output=True, text=True)
        assert lint.returncode == 0 and "Data contract is valid" in lint.stdout, lint.stdout + lint.stderr
        exported = OpenDataContractStandard.from_file(str(path))
        assert (exported.id, exported.version, exported.team.name) == (product.id, product.version, product.owner)
        [table] = exported.schema_
        assert [(c.name, c.physicalType, c.required) for c in table.properties] == [(c.name, c.type, c.required) for c in product.columns]
        assert [c.name for c in sorted(table.properties, key=lambda c: c.primaryKeyPosition or 0) if c.primaryKey] == list(product.primary_key)
        assert [q.implementation["expectation_type"] for q in table.quality or []] == [r.expect for r in product.quality]
        masked = {c.name for c in product.masked_columns}  # its rules ran before masking, not on what consumers read
        assert [bool(q.description) for q in table.quality or []] == [bool(masked & set(r.columns)) for r in product.quality]
        if product.id == "customers.customer_profiles":
            assert "checked before masking; consumers read email (hashed)" in [q.description for q in table.quality]
        custom = {c.property: c.value for c in exported.customProperties}
        assert (custom["access"], custom["retentionSnapshots"], custom["retentionGrace"]) == (product.access, product.retention.snapshots, "1h")
        assert custom.get("maxRowDrop") == product.max_row_drop


def test_odcs_names_the_mask_the_port_applies():
    """An internal product's port serves its PII in clear, whatever mask its contract declares for going public."""
    profiles = products_by_id(load_mesh())["customers.customer_profiles"]

    def email_mask(product) -> str | None:
        [table] = to_odcs(product).schema_
        [email] = [c for c in table.properties if c.name == "email"]
        return {c.property: c.value for c in email.customProperties}.get("mask")

    assert (email_mask(profiles), email_mask(profiles.model_copy(update={"access": "internal"}))) == ("hash", None)
