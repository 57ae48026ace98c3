"""A `mesh materialize` on Celery killed while its steps hold pool slots, or failed before its
first step reached the broker: the next run of the domain must not wait for those slots for
good, as after a killed in-process run, and a step the killed run sent must build nothing later."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import dagster as dg
import pytest
from kombu import Connection

from platform_lib import output_port
from platform_lib.localstack import BROKER, celery_env, free_port, wait_for
from platform_lib.storage import REPO_ROOT
from tests.deploy.test_celery import materializing

pytestmark = pytest.mark.slow

DOMAIN = "customers"


def tasks_waiting(queue: str) -> int:
    """The messages in `queue` on the RabbitMQ broker (none before a run declared the queue)."""
    with Connection(BROKER) as connection:
        try:
            return connection.default_channel.queue_declare(queue, passive=True).message_count
        except connection.channel_errors:
            return 0


def materialize(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform_lib.cli", "materialize", f"{DOMAIN}.raw_customers"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def runs() -> list[str]:
    with dg.DagsterInstance.get() as instance:
        return [r.dagster_run.status.value for r in instance.get_run_records()]


def no_slot_claimed(domain: str) -> bool:
    """Whether the domain's DuckDB pool has no slot taken."""
    with dg.DagsterInstance.get() as instance:
        return not instance.event_log_storage.get_concurrency_info(f"duckdb_{domain}").claimed_slots


def test_a_killed_distributed_run_gives_back_its_pool_slots_and_its_waiting_step_never_runs(mesh_dir, dagster_home, processes):
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue)}
    refused = materialize(env)  # no worker listens on the queue: the run would wait for good
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert f"mesh materialize: no Celery worker listens on queue '{queue}' (MESH_CELERY_QUEUE) at amqp://guest:**@" in refused.stderr
    assert runs() == []
    # Unless the deployment starts workers on demand: the first step takes its slot, and its task waits in the queue.
    env["MESH_CELERY_WAIT_FOR_WORKERS"] = "1"
    with materializing(env, DOMAIN, stderr=subprocess.STDOUT) as killed:  # killed as the block ends
        wait_for(lambda: tasks_waiting(queue) or killed.poll() is not None, 120, "the run to send its first step")
        assert killed.poll() is None, killed.stdout.read()[-3000:]  # the task is sent after the step took its slot

    in_process = {k: v for k, v in os.environ.items() if k != "MESH_EXECUTOR"}
    rerun = subprocess.run([sys.executable, "-m", "platform_lib.cli", "materialize", DOMAIN], cwd=REPO_ROOT,
                           env=in_process, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        statuses = sorted(r.dagster_run.status.value for r in instance.get_run_records())
        assert statuses == ["FAILURE", "SUCCESS"], statuses
        assert no_slot_claimed(DOMAIN)
        [failed] = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    published = output_port.current(f"{DOMAIN}.raw_customers").version

    # The killed run's task is still in the queue: a worker started on it now takes it, and the
    # step, seeing its run failed, builds nothing, rather than run outside its domain's pool.
    [worker] = processes.start_celery_workers(["w1"], queue, env)
    elsewhere = materialize({**env, "MESH_CELERY_QUEUE": "mesh-test-nobody", "MESH_CELERY_WAIT_FOR_WORKERS": ""})
    # Named among the workers found (other tests' workers may answer too).
    assert elsewhere.returncode == 2 and re.search(rf"(\(listening: |; ){worker}@\S+ on {queue}[;)]", elsewhere.stderr), elsewhere.stderr
    run_id = failed.dagster_run.run_id
    with dg.DagsterInstance.get() as instance:
        [failure] = wait_for(lambda: instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE), 60, "the failed run's step to end")
    assert failure.step_key == f"{DOMAIN}__raw_customers"
    assert f"its run {run_id} ended (FAILURE) before the step started" in failure.dagster_event.step_failure_data.error.message
    assert output_port.current(f"{DOMAIN}.raw_customers").version == published


def test_a_run_whose_broker_refuses_says_so_and_gives_back_its_pool_slot(mesh_dir, dagster_home):
    """dagster-celery takes a step's slot before it sends the step's task: a broker that is down
    fails the run, and the step, never started, kept its slot until the daemon freed it."""
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {**os.environ, **celery_env(queue), "MESH_CELERY_BROKER": f"pyamqp://guest:secret@127.0.0.1:{port}//"}
    refused = materialize(env)
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1] == (
        f"mesh materialize: cannot reach the Celery broker amqp://guest:**@127.0.0.1:{port}// (MESH_CELERY_BROKER): "
        "[Errno 111] Connection refused")
    assert runs() == []
    # A broker that goes down once the run has started (here: workers started on demand, nobody asked first).
    env["MESH_CELERY_WAIT_FOR_WORKERS"] = "1"
    for _ in range(2):  # the second run waited for the first one's slot, for good without a daemon
        run = materialize(env)
        assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
        assert run.stdout.strip().splitlines()[-1] == (
            f"{DOMAIN}.raw_customers: not built: the run failed: Encountered error during celery task submission: "
            "ConnectionRefusedError: [Errno 111] Connection refused"), run.stdout
    assert runs() == ["FAILURE", "FAILURE"]
    assert no_slot_claimed(DOMAIN)
