"""Fixtures for the dbt tests: the sample mesh materialized once with its dbt domain, then copied per test."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from platform_lib.materialize import Outcome, materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT

UNKNOWN_CUSTOMER = 999_999_999


@dataclass
class PublishedMesh:
    root: Path
    instance: dg.DagsterInstance
    outcomes: dict[str, Outcome]


def add_order(sources: Path, name: str, order_id: int, customer_id: int, status: str, quantity: int = 1) -> None:
    """A new order with one line, in new source files beside the sample ones."""
    duckdb.execute(
        f"COPY (SELECT {order_id}::BIGINT AS order_id, {customer_id}::BIGINT AS customer_id, DATE '2026-01-15' AS order_date, "
        f"'{status}' AS status) TO '{sources / 'orders' / f'orders_{name}.parquet'}' (FORMAT parquet)"
    )
    line = {"order_id": order_id, "line_no": 1, "product_sku": "SKU-0001", "quantity": quantity, "unit_price": 9.5}
    (sources / "orders" / f"order_lines_{name}.jsonl").write_text(json.dumps(line) + "\n")


def use(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_DATA_DIR", str(root / "mesh"))
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(root / "dbt_projects"))
    monkeypatch.delenv("MESH_DOMAINS_DIR", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture(scope="session")
def published_template(tmp_path_factory, sample_sources) -> PublishedMesh:
    """Every sample product published once, plus one order of a customer the CRM does not know."""
    root = tmp_path_factory.mktemp("dbt_mesh")
    shutil.copytree(sample_sources, root / "mesh" / "sources")
    shutil.copytree(REPO_ROOT / "dbt_projects", root / "dbt_projects", ignore=shutil.ignore_patterns("target", "logs"))
    add_order(root / "mesh" / "sources", "unknown_customer", 900_000_001, UNKNOWN_CUSTOMER, "placed")
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as monkeypatch:
        use(root, monkeypatch)
        outcomes = materialize_products([p for d in load_mesh() for p in d.products], instance)
    return PublishedMesh(root, instance, {o.product: o for o in outcomes})


@pytest.fixture
def published_mesh(published_template, tmp_path, monkeypatch) -> Path:
    """A private copy of the published mesh and its dbt projects (manifests included); returns the copy's root."""
    shutil.copytree(published_template.root, tmp_path / "copy")
    use(tmp_path / "copy", monkeypatch)
    return tmp_path / "copy"
