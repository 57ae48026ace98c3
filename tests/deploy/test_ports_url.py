"""Output ports addressed by URL: a deployment moves them without touching domain files."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.cli import main
from platform_lib.storage import PortError, published_dir


def test_the_mesh_publishes_to_and_reads_from_the_ports_url(mesh_dir, tmp_path, monkeypatch):
    shared = tmp_path / "shared mount" / "ports"
    monkeypatch.setenv("MESH_PORTS_URL", shared.as_uri())
    products = [p for d in load_mesh() for p in d.products]
    assert all(o.ok for o in materialize_products(products, instance=dg.DagsterInstance.ephemeral()))
    assert not (mesh_dir / "published").exists()
    for product in products:
        snapshot = output_port.current(product.id)
        assert snapshot.path.is_relative_to(shared) and snapshot.path.exists()
    # Consumers read their inputs through the moved ports, and record which versions.
    lines = output_port.current("orders.order_lines")
    assert lines.inputs["customers.customer_profiles"] == output_port.current("customers.customer_profiles").version


@pytest.mark.parametrize(
    "url, problem",
    [
        ("s3://bucket/ports", "support file:// URLs (local or mounted shared storage) only"),
        ("file://otherhost/ports", "'otherhost' is read as a host: an absolute path is file:///path"),
        ("file://ports", "'ports' is read as a host"),
        ("ports", "the path must be absolute"),
        ("file:ports", "the path must be absolute"),
        ("file:///x/p#1/y", "'?' and '#' in a path are written %3F and %23"),
        ("file:///x/p?v=1/y", "'?' and '#' in a path are written %3F and %23"),
    ],
)
def test_a_ports_url_this_platform_cannot_serve_is_refused_by_name(monkeypatch, capsys, url, problem):
    """A relative path would be another folder for each working directory, `#` or `?` would cut the path."""
    monkeypatch.setenv("MESH_PORTS_URL", url)
    with pytest.raises(PortError, match=f"MESH_PORTS_URL={re.escape(url)}: .*{re.escape(problem)}"):
        published_dir()
    assert main(["lineage", "orders.order_lines"]) == 2
    assert capsys.readouterr().err.startswith(f"mesh lineage: MESH_PORTS_URL={url}: ")


def test_a_plain_path_is_a_ports_url_too(monkeypatch, tmp_path):
    monkeypatch.setenv("MESH_PORTS_URL", str(tmp_path / "ports"))
    assert published_dir() == tmp_path / "ports"
