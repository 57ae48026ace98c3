"""An operator whose PostgreSQL is down, whose environment lacks one of dagster.yaml's
variables or gives the executor's a value it cannot take, gets one line saying so from
`mesh`, not Dagster's stack traces; a Celery worker lacking one fails the step's task, and
the run's summary says why for its products."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from platform_lib.localstack import celery_env, free_port
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


@pytest.mark.parametrize("setting, expected", [
    ({"MESH_EXECUTOR": "Celery"}, "MESH_EXECUTOR='Celery': expected 'in_process' or 'celery'"),
    ({"MESH_CELERY_WAIT_FOR_WORKERS": "true"},
     "MESH_CELERY_WAIT_FOR_WORKERS='true': expected 1 (send the steps with no worker listening) or 0"),
])
def test_an_executor_setting_it_cannot_take(setting, expected, mesh_dir, dagster_home):
    run = mesh("materialize", "customers", **{**celery_env(f"mesh-test-{uuid.uuid4().hex[:12]}"), **setting})
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [f"mesh materialize: {expected}"], run.stderr[-3000:]
    assert not (mesh_dir / "published").exists()


@pytest.mark.parametrize("command", [["materialize", "customers"], ["costs"]])
def test_a_variable_of_dagster_yaml_not_set(command, mesh_dir, dagster_home):
    run = mesh(*command, DAGSTER_PG_PASSWORD=None)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1] == (
        f"mesh {command[0]}: cannot open the Dagster instance of DAGSTER_HOME={dagster_home}: You have attempted to fetch "
        'the environment variable "DAGSTER_PG_PASSWORD" which is not set. In order for this execution to succeed it '
        "must be set in this environment.")


def test_a_worker_without_a_variable_of_dagster_yaml(mesh_dir, dagster_home, processes):
    """The task carries the run's instance reference, which the worker opens with its own
    environment: the error was only in the worker's log, the product said nothing."""
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue)}
    processes.start_celery_workers(["w1"], queue, {k: v for k, v in env.items() if k != "DAGSTER_PG_DB"})
    run = mesh("materialize", "customers", **celery_env(queue))
    assert run.returncode == 1, run.stdout + run.stderr
    assert (
        "\ncustomers.raw_customers: not built: a worker could not run the step: dagster._config.errors.PostProcessingError: "
        'You have attempted to fetch the environment variable "DAGSTER_PG_DB" which is not set. In order for this '
        "execution to succeed it must be set in this environment. (its stack is in the worker's log)\n") in run.stdout, run.stdout
    assert "an unexpected error" not in run.stderr, run.stderr[-3000:]
    assert "\ncustomers.customer_profiles: not built: customers.raw_customers was not published in this run\n" in run.stdout
