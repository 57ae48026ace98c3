"""Fixtures: a mesh whose sample products were all published once, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT


@pytest.fixture(scope="session")
def published_template(tmp_path_factory, sample_sources) -> Path:
    """Sample sources with every product published once; tests never write here."""
    data = tmp_path_factory.mktemp("published") / "mesh"
    shutil.copytree(sample_sources, data / "sources")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_DATA_DIR", str(data))
        patch.delenv("DAGSTER_HOME", raising=False)
        outcomes = materialize_products([p for d in load_mesh() for p in d.products])
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    return data


@pytest.fixture
def published_mesh(tmp_path, monkeypatch, published_template, domains_copy) -> Path:
    """A private copy of the published mesh, with a writable copy of the domains."""
    data = tmp_path / "mesh"
    shutil.copytree(published_template, data)
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    """A Dagster instance with the pools of `make dev`, for runs in several processes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy/dagster.local.yaml", home / "dagster.yaml")
    return home
