"""An operator whose PostgreSQL is down, or whose environment lacks one of dagster.yaml's
variables, gets one line saying so from `mesh`, not Dagster's stack traces."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from platform_lib.localstack import free_port
from platform_lib.storage import REPO_ROOT


def mesh(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "platform_lib.cli", *args], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_postgres_not_listening(mesh_dir, dagster_home):
    port = str(free_port())
    run = mesh("materialize", "customers.raw_customers", DAGSTER_PG_PORT=port)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mesh materialize: cannot open the Dagster instance of DAGSTER_HOME={dagster_home}: PostgreSQL: "), last
    assert f"port {port} failed" in last, last


@pytest.mark.parametrize("command", [["materialize", "customers"], ["costs"]])
def test_a_variable_of_dagster_yaml_not_set(command, mesh_dir, dagster_home):
    run = mesh(*command, DAGSTER_PG_PASSWORD=None)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1] == (
        f"mesh {command[0]}: cannot open the Dagster instance of DAGSTER_HOME={dagster_home}: You have attempted to fetch "
        'the environment variable "DAGSTER_PG_PASSWORD" which is not set. In order for this execution to succeed it '
        "must be set in this environment.")
