"""Each domain is a code location that loads on its own, and a broken one fails alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from platform_lib.domain import domain_definitions
from platform_lib.mesh import domains_dir
from platform_lib.sample_data import DOMAINS
from platform_lib.storage import REPO_ROOT

BIN = Path(sys.executable).parent


def validate(workspace: Path, home: Path) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(workspace)],
        cwd=workspace.parent, env={"DAGSTER_HOME": str(home), "PATH": str(BIN), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_location_is_loadable_and_carries_the_contract(domain):
    defs = domain_definitions(domains_dir() / domain)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    local = [node for node in graph.asset_nodes if not node.is_external]
    assert local and all(node.group_name == domain for node in local)
    for node in local:
        assert node.owners == [f"team:team-{domain}"]
        assert {"access", "pii", "domain"} <= set(node.tags)
        assert "duckdb" in node.kinds and "parquet" in node.kinds
        assert node.metadata["dagster/column_schema"].columns
        assert node.description and node.automation_condition is not None
        assert graph.get_check_keys_for_assets({node.key}), f"{node.key} has no checks"


def test_cross_domain_inputs_are_dependencies_on_the_producer_asset():
    graph = domain_definitions(domains_dir() / "orders").resolve_asset_graph()
    lines = graph.get(dg.AssetKey(["orders", "order_lines"]))
    assert dg.AssetKey(["customers", "customer_profiles"]) in lines.parent_keys


def test_the_workspace_validates(sample_repo, tmp_path):
    """The sample's workspace.yaml, its entries as the repository's and `mesh new-domain` write them."""
    result = validate(sample_repo / "workspace.yaml", tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_a_broken_domain_fails_only_its_own_location(domains_copy, tmp_path):
    broken = domains_copy / "marketing" / "products" / "segment_revenue.yaml"
    broken.write_text(broken.read_text().replace("access: internal", "access: secret"))
    output = validate(domains_copy.parent / "workspace.yaml", tmp_path / "home")
    text = output.stdout + output.stderr
    assert output.returncode != 0
    assert "Validation successful for code location customers" in text
    assert "Validation successful for code location orders" in text
    assert "segment_revenue.yaml: product marketing.segment_revenue: field 'access'" in text


def test_the_domain_component_builds_the_same_location(tmp_path):
    from dagster.components.testing.utils import component_defs

    from platform_lib.components import MeshDomain

    folder = domains_dir() / "customers"
    built = component_defs(component=MeshDomain(path=str(folder)))
    direct = domain_definitions(folder)
    assert built.resolve_asset_graph().get_all_asset_keys() == direct.resolve_asset_graph().get_all_asset_keys()
    assert [s.name for s in built.sensors] == ["customers_automation", "customers_status_alerts"]
