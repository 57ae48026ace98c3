"""Policies about what reaches the output ports, proven on real published snapshots."""

from __future__ import annotations

import hashlib

import dagster as dg
import duckdb

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id

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


def test_a_hash_without_a_salt_is_flagged_on_the_materialization(mesh_dir, monkeypatch):
    def flag(salt: str):
        monkeypatch.setenv("MESH_PII_SALT", salt)
        products = products_by_id(load_mesh())
        with dg.DagsterInstance.ephemeral() as instance:
            materialize_products([products["customers.raw_customers"], products["customers.customer_profiles"]], instance=instance)
            event = instance.get_latest_materialization_event(dg.AssetKey(["customers", "customer_profiles"]))
        metadata = event.asset_materialization.metadata
        return metadata["pii_hashed_without_salt"].value if "pii_hashed_without_salt" in metadata else None

    assert flag("") == "email: plain SHA-256, reversible with a list of values; set MESH_PII_SALT"
    assert flag(SALT) is None


def test_retention_is_applied_at_publish_and_checked_by_validate(mesh_dir, domains_copy, edit, capsys):
    for _ in range(3):
        _materialize("customers.raw_customers")
    assert len(output_port.versions("customers.raw_customers")) == 3
    edit("customers/products/raw_customers.yaml", "retention: {snapshots: 5}", "retention: {snapshots: 2}")

    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "retention-applied customers.raw_customers domains/customers/products/raw_customers.yaml: "
        "keeps 3 published snapshots, more than its retention of 2; materialize it once to prune, or raise `retention.snapshots`"
    ]

    _materialize("customers.raw_customers")
    kept = output_port.versions("customers.raw_customers")
    assert len(kept) == 2 and kept[-1] == output_port.current("customers.raw_customers").version
    assert main(["validate"]) == 0
