"""Helpers of the dbt tests: extra source rows, and pointing the platform at a copy of the mesh."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from platform_lib.storage import REPO_ROOT


def add_order(sources: Path, name: str, order_id: int, customer_id: int, status: str, quantity: int = 1) -> None:
    """A new order with one line, in new source files beside the sample ones."""
    duckdb.execute(
        f"COPY (SELECT {order_id}::BIGINT AS order_id, {customer_id}::BIGINT AS customer_id, DATE '2026-01-15' AS order_date, "
        f"'{status}' AS status) TO '{sources / 'orders' / f'orders_{name}.parquet'}' (FORMAT parquet)"
    )
    line = {"order_id": order_id, "line_no": 1, "product_sku": "SKU-0001", "quantity": quantity, "unit_price": 9.5}
    (sources / "orders" / f"order_lines_{name}.jsonl").write_text(json.dumps(line) + "\n")


def copy_dbt_project(root: Path) -> Path:
    """A copy of the sample's dbt project (not a fork's own) in `root`/dbt_projects, without what dbt wrote; returns that folder."""
    shutil.copytree(REPO_ROOT / "dbt_projects" / "orders", root / "dbt_projects" / "orders", ignore=shutil.ignore_patterns("target", "logs"))
    return root / "dbt_projects"


def use(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_DATA_DIR", str(root / "mesh"))
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(root / "dbt_projects"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
