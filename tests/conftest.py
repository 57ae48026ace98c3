"""Shared fixtures: every test gets its own mesh data folder with fresh sample data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from platform_lib import sample_data
from platform_lib.scaffold import workspace_entry
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


@pytest.fixture(scope="session", autouse=True)
def sample_repo(tmp_path_factory) -> Iterator[Path]:
    """The repository as the platform's tests see it: copies of the sample domains and a
    workspace.yaml of their code locations, whatever domains a fork added to the repository's.
    MESH_DOMAINS_DIR points at its domains/ all session long (in subprocesses too); a code
    location finds its folder by its definitions.py, which is why the workspace sits here."""
    root = tmp_path_factory.mktemp("sample_repo")
    for name in sample_data.DOMAINS:
        shutil.copytree(REPO_ROOT / "domains" / name, root / "domains" / name, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_DOMAINS_DIR", str(root / "domains"))
        (root / "workspace.yaml").write_text(
            "load_from:\n" + "".join(workspace_entry(name, root / "domains" / name) for name in sample_data.DOMAINS), encoding="utf-8"
        )
        yield root


@pytest.fixture
def mesh_dir(tmp_path, monkeypatch, sample_sources) -> Path:
    """A private MESH_DATA_DIR holding a copy of the sample sources; nothing else shared."""
    data = tmp_path / "mesh"
    shutil.copytree(sample_sources, data / "sources")
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


@pytest.fixture
def domains_copy(tmp_path, monkeypatch, sample_repo) -> Path:
    """A writable copy of the sample domains, for tests that break or extend them; beside it
    the sample workspace.yaml, which `mesh new-domain` extends."""
    target = tmp_path / "domains"
    shutil.copytree(sample_repo / "domains", target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(sample_repo / "workspace.yaml", tmp_path)
    monkeypatch.setenv("MESH_DOMAINS_DIR", str(target))
    return target
