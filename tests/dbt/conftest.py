"""Fixtures for the dbt tests: the sample mesh materialized once with its dbt domain, then copied per test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from platform_lib.materialize import materialize_products
from platform_lib.outcomes import Outcome
from platform_lib.mesh import load_mesh

from tests.dbt.dbt_helpers import add_order, copy_dbt_project, use

UNKNOWN_CUSTOMER = 999_999_999


@dataclass
class PublishedMesh:
    root: Path
    instance: dg.DagsterInstance
    outcomes: dict[str, Outcome]


@pytest.fixture(scope="session")
def published_template(tmp_path_factory, sample_sources) -> PublishedMesh:
    """Every sample product published once, plus one order of a customer the CRM does not know."""
    root = tmp_path_factory.mktemp("dbt_mesh")
    shutil.copytree(sample_sources, root / "mesh" / "sources")
    copy_dbt_project(root)
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
