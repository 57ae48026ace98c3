"""Policies about what reaches the output ports, proven on real published snapshots."""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import duckdb

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.factories.product import product_asset
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.odcs import to_odcs

SALT = "test-salt"


def _materialize(*product_ids: str) -> None:
    products = products_by_id(load_mesh())
    outcomes = materialize_products([products[i] for i in product_ids])
    assert [(o.product, o.status) for o in outcomes] == [(i, "published") for i in product_ids]


def _rows(product_id: str, sql: str) -> list[tuple]:
    path = output_port.current(product_id).path
    return duckdb.sql(sql.replace("port", f"read_parquet('{path}')")).fetchall()


def test_pii_leaves_the_domain_only_masked_as_the_contract_says(mesh_dir, domains_copy, edit, monkeypatch):
    monkeypatch.setenv("MESH_PII_SALT", SALT)
    edit("customers/products/customer_profiles.yaml", "{name: country, type: VARCHAR, required: true,",
         "{name: full_name, type: VARCHAR, pii: true, mask: redact}\n  - {name: country, type: VARCHAR, required: true,")
    edit("customers/products/customer_profiles.sql", "lower(trim(email)) AS email,", "lower(trim(email)) AS email, full_name,")
    _materialize("customers.raw_customers", "customers.customer_profiles")

    clear = dict(_rows("customers.raw_customers", "SELECT customer_id, lower(trim(email)) FROM port"))
    published = _rows("customers.customer_profiles", "SELECT customer_id, email, full_name FROM port ORDER BY customer_id")
    assert len(published) == len(clear) > 0
    for customer_id, email, full_name in published:
        assert email == hashlib.sha256((SALT + clear[customer_id]).encode()).hexdigest()
        assert full_name is None
    # The internal product stays in clear inside its domain: masking is for what leaves it.
    assert _rows("customers.raw_customers", "SELECT count(*) FROM port WHERE full_name LIKE 'Customer %'")[0][0] == len(clear)


def test_a_masked_column_is_described_as_consumers_read_it(mesh_dir, domains_copy, edit, tmp_path):
    """A hashed column is text whatever its contract type, a redacted one is NULL: the export to
    ODCS, the catalog and the asset's column schema say what the snapshot holds, not the contract."""
    edit("customers/products/customer_profiles.yaml", "{name: country, type: VARCHAR, required: true,",
         "{name: signup_day, type: DATE, required: true, pii: true, mask: hash}\n"
         "  - {name: full_name, type: VARCHAR, required: true, pii: true, mask: redact}\n"
         "  - {name: country, type: VARCHAR, required: true,")
    edit("customers/products/customer_profiles.sql", "lower(trim(email)) AS email,", "lower(trim(email)) AS email, signup_date AS signup_day, full_name,")
    _materialize("customers.raw_customers", "customers.customer_profiles")
    product = products_by_id(load_mesh())["customers.customer_profiles"]

    path = output_port.current(product.id).path
    published = {name: (kind, nulls) for name, kind, nulls in duckdb.sql(
        f"SELECT column_name, column_type, null_percentage FROM (SUMMARIZE SELECT * FROM read_parquet('{path}'))").fetchall()}
    assert published["signup_day"] == ("VARCHAR", 0) and published["full_name"] == ("VARCHAR", 100)
    served = {c.name: (c.type, c.required) for c in product.served_columns}
    assert {name: kind for name, (kind, _) in published.items()} == {name: kind for name, (kind, _) in served.items()}
    assert served["signup_day"] == ("VARCHAR", True) and served["full_name"] == ("VARCHAR", False)

    [table] = to_odcs(product).schema_
    odcs = {p.name: p for p in table.properties}
    assert (odcs["signup_day"].physicalType, odcs["signup_day"].logicalType, odcs["signup_day"].required) == ("VARCHAR", "string", True)
    assert {c.property: c.value for c in odcs["signup_day"].customProperties}["contractType"] == "DATE"
    assert (odcs["full_name"].required, {c.property: c.value for c in odcs["full_name"].customProperties}["contractRequired"]) == (False, True)

    assert main(["catalog", "--out", str(tmp_path / "catalog")]) == 0
    catalog = json.loads((tmp_path / "catalog" / "catalog.json").read_text())
    [entry] = [p for p in catalog["products"] if p["id"] == product.id]
    columns = {c["name"]: c for c in entry["contract"]["columns"]}
    assert (columns["signup_day"]["type"], columns["signup_day"]["served_type"]) == ("DATE", "VARCHAR")
    assert (columns["full_name"]["required"], columns["full_name"]["served_required"], columns["full_name"]["masked"]) == (True, False, True)

    schema = product_asset(product).specs_by_key[dg.AssetKey(["customers", "customer_profiles"])].metadata["dagster/column_schema"]
    assert {c.name: (c.type, c.constraints.nullable) for c in schema.columns}["signup_day"] == ("VARCHAR", False)
    assert {c.name: c.constraints.nullable for c in schema.columns}["full_name"] is True


def test_a_hash_without_a_salt_is_flagged_on_the_materialization_and_in_the_summary(mesh_dir, monkeypatch):
    def flag(salt: str):
        monkeypatch.setenv("MESH_PII_SALT", salt)
        products = products_by_id(load_mesh())
        with dg.DagsterInstance.ephemeral() as instance:
            outcomes = materialize_products([products["customers.raw_customers"], products["customers.customer_profiles"]], instance=instance)
            event = instance.get_latest_materialization_event(dg.AssetKey(["customers", "customer_profiles"]))
        metadata = event.asset_materialization.metadata
        flagged = metadata["pii_hashed_without_salt"].value if "pii_hashed_without_salt" in metadata else None
        return flagged, [n for o in outcomes if o.product == "customers.customer_profiles" for n in o.notes]

    unsalted = "email: plain SHA-256, reversible with a list of values; set MESH_PII_SALT"
    assert flag("") == (unsalted, [f"PII column {unsalted}"])
    assert flag(SALT) == (None, [])


def test_retention_is_applied_at_publish_and_checked_by_validate(mesh_dir, domains_copy, edit, capsys):
    for _ in range(3):
        _materialize("customers.raw_customers")
    assert len(output_port.versions("customers.raw_customers")) == 3
    edit("customers/products/raw_customers.yaml", "retention: {snapshots: 5}", "retention: {snapshots: 2}")
    assert main(["validate"]) == 0, "the oldest was replaced less than the grace (1h) ago: a consumer may still read it"
    capsys.readouterr()

    edit("customers/products/raw_customers.yaml", "retention: {snapshots: 2}", "retention: {snapshots: 2, grace: 0s}")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "retention-applied customers.raw_customers domains/customers/products/raw_customers.yaml: "
        "keeps 3 published snapshots, 1 of them beyond its retention of 2 and replaced more than 0s ago; "
        "materialize it once to prune, or raise `retention.snapshots`"
    ]

    _materialize("customers.raw_customers")
    kept = output_port.versions("customers.raw_customers")
    assert len(kept) == 2 and kept[-1] == output_port.current("customers.raw_customers").version
    assert main(["validate"]) == 0
