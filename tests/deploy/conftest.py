"""Fixtures for the production pieces: a private PostgreSQL database per test, a
DAGSTER_HOME holding deploy/dagster.yaml, and servers stopped with their process group."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_lib import localstack


@pytest.fixture
def postgres_db() -> str:
    with localstack.postgres_database("mesh_test") as name:
        yield name


@pytest.fixture
def dagster_home(tmp_path, monkeypatch, postgres_db) -> Path:
    """The production instance config, pointed by environment variables at `postgres_db`."""
    for name, value in localstack.instance_env(tmp_path / "dagster_home", postgres_db).items():
        monkeypatch.setenv(name, value)
    return tmp_path / "dagster_home"


@pytest.fixture
def processes(tmp_path) -> localstack.Processes:
    started = localstack.Processes(tmp_path / "logs")
    yield started
    started.stop_all()
