"""Output ports addressed by URL: a deployment moves them without touching domain files."""

from __future__ import annotations

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import published_dir


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


@pytest.mark.parametrize("url", ["s3://bucket/ports", "file://otherhost/ports"])
def test_a_ports_url_this_platform_cannot_serve_is_refused_by_name(monkeypatch, url):
    monkeypatch.setenv("MESH_PORTS_URL", url)
    with pytest.raises(ValueError, match="MESH_PORTS_URL=.*file:// URLs"):
        published_dir()


def test_a_plain_path_is_a_ports_url_too(monkeypatch, tmp_path):
    monkeypatch.setenv("MESH_PORTS_URL", str(tmp_path / "ports"))
    assert published_dir() == tmp_path / "ports"
