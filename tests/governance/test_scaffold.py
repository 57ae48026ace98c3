"""Self-serve: the domain template is a real domain, and a new domain ships a product with no Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.contract import load_domain, load_products
from platform_lib.domain import domain_definitions
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.scaffold import TEMPLATE_NAME, TEMPLATES
from platform_lib.storage import REPO_ROOT, sources_dir


def test_the_domain_template_loads_follows_the_policies_and_publishes(mesh_dir):
    definitions = domain_definitions(TEMPLATES / "domain")  # raises on any policy violation
    assert [k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()] == [f"{TEMPLATE_NAME}/items"]
    (sources_dir() / TEMPLATE_NAME).mkdir()
    shutil.copy(TEMPLATES / "sources" / "items.csv", sources_dir() / TEMPLATE_NAME)
    [outcome] = materialize_products(load_products(load_domain(TEMPLATES / "domain")))
    assert (outcome.status, outcome.rows, outcome.failed) == ("published", 4, [])


def test_new_product_skeletons_load_and_run(mesh_dir, domains_copy, capsys):
    for kind in ("sql", "pandas", "dbt"):
        assert main(["new-product", "customers", f"profile_{kind}", "--kind", kind, "--input", "customers.raw_customers"]) == 0
    assert main(["new-product", "customers", "raw_visits", "--kind", "ingest"]) == 0
    assert main(["validate"]) == 0
    products = products_by_id(load_mesh())
    assert products["customers.profile_dbt"].transform == "dbt"
    assert products["customers.raw_visits"].source.path == "customers/raw_visits*.csv"
    outcomes = materialize_products([products[i] for i in ("customers.raw_customers", "customers.profile_sql", "customers.profile_pandas")])
    assert [(o.status, o.failed) for o in outcomes] == [("published", [])] * 3
    assert outcomes[1].rows == outcomes[2].rows == outcomes[0].rows > 0


@pytest.mark.parametrize("argv, message", [
    (["new-domain", "customers", "--owner", "team-x"], "customers already exists"),
    (["new-domain", "Bad-Name", "--owner", "team-x"], "'Bad-Name' is not a domain name"),
    (["new-product", "nowhere", "x", "--kind", "sql", "--input", "customers.raw_customers"], "no domain nowhere"),
    (["new-product", "orders", "x", "--kind", "sql"], "give at least one --input DOMAIN.PRODUCT"),
    (["new-product", "orders", "x", "--kind", "sql", "--input", "orders.nope"], "--input orders.nope: no such product"),
])
def test_scaffold_refuses_with_a_reason(argv, message, domains_copy, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ---- the end-to-end self-serve test: a copy of the repository, only `mesh` commands and YAML/SQL/CSV edits


@pytest.fixture
def repo_copy(tmp_path, mesh_dir, monkeypatch) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT, target, ignore=shutil.ignore_patterns(".git", ".venv", ".mesh", ".dagster_home", "__pycache__", "*.egg-info", "test-artifacts")
    )
    monkeypatch.delenv("MESH_DOMAINS_DIR", raising=False)
    return target


def mesh(repo: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    result = subprocess.run([sys.executable, "-m", "platform_lib.cli", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"mesh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


SHIPMENTS_CSV = """shipment_id,order_id,carrier,recipient_email,shipped_on,days_late
1,10,dhl,ana@example.com,2026-03-01,0
2,11,ups,bo@example.com,2026-03-02,3
3,12,dhl,cy@example.com,2026-03-02,5
"""

SHIPMENTS_COLUMNS = """columns:
  - {name: shipment_id, type: BIGINT, required: true}
  - {name: order_id, type: BIGINT, required: true}
  - {name: carrier, type: VARCHAR, required: true}
  - {name: recipient_email, type: VARCHAR, pii: true, mask: hash}
  - {name: shipped_on, type: DATE, required: true}
  - {name: days_late, type: INTEGER, required: true}
quality:
  - {expect: expect_column_values_to_be_in_set, column: carrier, value_set: [dhl, ups, postnl]}
"""


def test_a_new_domain_publishes_a_product_that_another_new_domain_consumes(repo_copy, mesh_dir):
    domains = repo_copy / "domains"
    print(mesh(repo_copy, "new-domain", "shipping", "--owner", "team-shipping"))

    # The shipping team describes its own source: a CSV file and a public contract for it.
    mesh(repo_copy, "new-product", "shipping", "shipments", "--kind", "ingest")
    (mesh_dir / "sources" / "shipping" / "shipments.csv").write_text(SHIPMENTS_CSV, encoding="utf-8")
    contract = domains / "shipping" / "products" / "shipments.yaml"
    replace(contract, "access: internal", "access: public\nfreshness: {fail_after: 26h}")
    replace(contract, "primary_key: [id]", "primary_key: [shipment_id]")
    replace(contract, "columns:\n  - {name: id, type: BIGINT, required: true}\nquality: []\n", SHIPMENTS_COLUMNS)

    # The support team, a domain of its own, reads it with SQL.
    mesh(repo_copy, "new-domain", "support", "--owner", "team-support")
    mesh(repo_copy, "new-product", "support", "late_shipments", "--kind", "sql", "--input", "shipping.shipments")
    replace(domains / "support" / "products" / "late_shipments.sql", "FROM shipping.shipments", "FROM shipping.shipments\nWHERE days_late > 0")

    assert mesh(repo_copy, "validate") == ""
    summary = mesh(repo_copy, "materialize", "shipping", "support")
    assert "FAILED" not in summary and "not published" not in summary, summary

    shipments = json.loads((mesh_dir / "published/shipping/shipments/current.json").read_text())
    late = json.loads((mesh_dir / "published/support/late_shipments/current.json").read_text())
    assert shipments["rows"] == 3 and late["rows"] == 2
    assert late["inputs"] == {"shipping.shipments": shipments["version"]}
    emails = duckdb.sql(f"SELECT recipient_email FROM '{mesh_dir}/published/support/late_shipments/{late['version']}/data.parquet'").fetchall()
    assert all(len(e) == 64 and "@" not in e for (e,) in emails)

    # The new code locations are in workspace.yaml and load.
    locations = yaml.safe_load((repo_copy / "workspace.yaml").read_text())["load_from"]
    new = [entry["python_file"] for entry in locations if entry["python_file"]["location_name"] in ("shipping", "support")]
    assert [entry["relative_path"] for entry in new] == ["domains/shipping/definitions.py", "domains/support/definitions.py"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import runpy, sys\nfor path in sys.argv[1:]:\n"
         "    print(sorted(k.to_user_string() for k in runpy.run_path(path)['defs'].resolve_asset_graph().get_all_asset_keys()))",
         *(entry["relative_path"] for entry in new)],
        cwd=repo_copy, env={**os.environ, "PYTHONPATH": str(repo_copy)}, capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.splitlines() == [
        "['shipping/items', 'shipping/shipments']",
        "['shipping/shipments', 'support/items', 'support/late_shipments']",  # its input, from the other domain
    ]
    assert output_port.current("support.late_shipments").version == late["version"]
