"""Self-serve: the domain template is a real domain, and a new domain ships a product with no Python."""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy
import shutil
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
    definitions = domain_definitions(TEMPLATES / TEMPLATE_NAME)  # raises on any policy violation
    assert [k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()] == [f"{TEMPLATE_NAME}/items"]
    (sources_dir() / TEMPLATE_NAME).mkdir()
    shutil.copy(TEMPLATES / "sources" / "items.csv", sources_dir() / TEMPLATE_NAME)
    [outcome] = materialize_products(load_products(load_domain(TEMPLATES / TEMPLATE_NAME)))
    assert (outcome.status, outcome.rows, outcome.failed) == ("published", 4, [])


def test_new_product_skeletons_load_and_run(mesh_dir, domains_copy, capsys):
    for kind in ("sql", "pandas"):
        assert main(["new-product", "customers", f"profile_{kind}", "--kind", kind, "--input", "customers.raw_customers"]) == 0
    assert main(["new-product", "customers", "raw_visits", "--kind", "ingest"]) == 0
    assert main(["validate"]) == 0
    products = products_by_id(load_mesh())
    assert products["customers.raw_visits"].source.path == "customers/raw_visits*.csv"
    outcomes = materialize_products([products[i] for i in ("customers.raw_customers", "customers.profile_sql", "customers.profile_pandas")])
    assert [(o.status, o.failed) for o in outcomes] == [("published", [])] * 3
    assert outcomes[1].rows == outcomes[2].rows == outcomes[0].rows > 0


def test_a_dbt_product_skeleton_points_at_its_model_in_the_domains_dbt_project(domains_copy, capsys):
    assert main(["new-product", "orders", "returns_by_day", "--kind", "dbt"]) == 0
    assert "write the model returns_by_day in dbt_projects/orders/" in capsys.readouterr().out
    assert main(["validate"]) == 1
    assert "valid-contract orders.returns_by_day domains/orders/products/returns_by_day.yaml: dbt project orders: has no model " \
        "returns_by_day (its models: order_lines); fix field 'dbt.model'" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("argv, message", [
    (["new-domain", "customers", "--owner", "team-x"], "customers already exists"),
    (["new-domain", "Bad-Name", "--owner", "team-x"], "'Bad-Name' is not a domain name"),
    (["new-domain", "main", "--owner", "team-x"], "'main' is DuckDB's own name"),
    (["new-product", "nowhere", "x", "--kind", "sql", "--input", "customers.raw_customers"], "no domain nowhere"),
    (["new-product", "orders", "x", "--kind", "sql"], "give at least one --input DOMAIN.PRODUCT"),
    (["new-product", "orders", "x", "--kind", "sql", "--input", "orders.nope"], "--input orders.nope: no such product"),
    (["new-product", "orders", "x", "--kind", "dbt", "--input", "orders.raw_orders"], "takes its inputs from its dbt sources"),
    (["new-product", "marketing", "x", "--kind", "pandas", "--input", "orders.raw_orders"],
     "--input orders.raw_orders: an internal product of domain orders; only its public products may be read from marketing"),
])
def test_scaffold_refuses_with_a_reason(argv, message, domains_copy, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ---- the end-to-end self-serve test: a copy of the repository, docs/walkthrough.md followed to the letter


@pytest.fixture
def repo_copy(tmp_path, mesh_dir, monkeypatch, sample_repo) -> Path:
    """A copy of the repository's docs with the sample domains and their workspace; `mesh` works on it through MESH_DOMAINS_DIR."""
    target = tmp_path / "repo"
    shutil.copytree(sample_repo, target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "docs", target / "docs")
    monkeypatch.setenv("MESH_DOMAINS_DIR", str(target / "domains"))
    return target


def mesh(*args: str) -> str:
    """Run a `mesh` command as a user would, and return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(list(args))
    assert code == 0, f"mesh {' '.join(args)} exited {code}:\n{printed.getvalue()}"
    return printed.getvalue()


BLOCK = re.compile(r"(?P<before>[^\n]*)\n\n?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
TARGET = re.compile(r"`([^`]+\.(?:csv|yaml|sql))`:$")


def follow_walkthrough(repo: Path, data: Path) -> list[str]:
    """Do what docs/walkthrough.md says, in its order: run its `mesh` commands, write the files it shows.

    A csv, yaml or sql block is the whole content of the file named at the end of the
    line before it; `.mesh/` there is the mesh data folder. Returns the commands run.
    """
    commands = []
    for block in BLOCK.finditer((repo / "docs" / "walkthrough.md").read_text(encoding="utf-8")):
        if block["lang"] == "sh":
            for line in block["body"].splitlines():
                command = line.split("#", 1)[0].split()
                if command[:1] == ["mesh"]:
                    mesh(*command[1:])
                    commands.append(" ".join(command))
        elif block["lang"] in ("csv", "yaml", "sql"):
            target = TARGET.search(block["before"].strip())
            assert target, f"no file named before the {block['lang']} block: {block['before']!r}"
            name = target.group(1)
            path = data / name.removeprefix(".mesh/") if name.startswith(".mesh/") else repo / name
            path.write_text(block["body"], encoding="utf-8")
    return commands


def test_the_walkthrough_takes_a_new_domain_to_a_product_another_new_domain_consumes(repo_copy, mesh_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    commands = follow_walkthrough(repo_copy, mesh_dir)
    assert commands[:3] == [
        "mesh new-domain shipping --owner team-shipping", "mesh new-product shipping shipments --kind ingest", "mesh validate"
    ]
    assert {"mesh materialize support", "mesh lineage support.late_shipments", "mesh catalog", "mesh costs", "mesh status shipping support"} <= set(commands)

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
    loaded = [
        sorted(k.to_user_string() for k in runpy.run_path(str(repo_copy / e["relative_path"]))["defs"].resolve_asset_graph().get_all_asset_keys())
        for e in new
    ]
    assert loaded == [
        ["shipping/items", "shipping/shipments"],
        ["shipping/shipments", "support/items", "support/late_shipments"],  # its input, from the other domain
    ]
    assert output_port.current("support.late_shipments").version == late["version"]
