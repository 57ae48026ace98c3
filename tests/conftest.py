"""Shared fixtures: every test gets its own mesh data folder with fresh sample data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from platform_lib import sample_data
from platform_lib.storage import REPO_ROOT

TEST_SCALE = 0.2
# As a deployment has one (else every run's summary notes the plain hashes); the tests of
# hashing without it unset it themselves. Subprocesses the tests start inherit it.
os.environ.setdefault("MESH_PII_SALT", "the tests' salt")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked slow first: `make test` hands whole files to its two workers
    (`--dist loadfile`, in collection order), and a long file picked up last would keep
    one worker busy while the other has nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def sample_sources(tmp_path_factory) -> Path:
    """Sample source files generated once per test session; tests copy them."""
    return sample_data.generate(TEST_SCALE, tmp_path_factory.mktemp("sample") / "sources")


@pytest.fixture(scope="session", autouse=True)
def _no_shared_mesh_data(tmp_path_factory) -> Iterator[None]:
    """A test without `mesh_dir` reads an empty MESH_DATA_DIR, not the developer's `.mesh/`
    (`make` exports it): ports left there by `make dev` or a walkthrough are no test's input.
    Session-wide, so that a module's own MESH_DATA_DIR (a `dagster dev`'s) still holds in its tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_DATA_DIR", str(tmp_path_factory.mktemp("no_mesh_data")))
        yield


@pytest.fixture
def mesh_dir(tmp_path, monkeypatch, sample_sources) -> Path:
    """A private MESH_DATA_DIR holding a copy of the sample sources; nothing else shared."""
    data = tmp_path / "mesh"
    shutil.copytree(sample_sources, data / "sources")
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


@pytest.fixture
def domains_copy(tmp_path, monkeypatch) -> Path:
    """A writable copy of the sample domains, for tests that break or extend them."""
    target = tmp_path / "domains"
    shutil.copytree(REPO_ROOT / "domains", target, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("MESH_DOMAINS_DIR", str(target))
    return target
