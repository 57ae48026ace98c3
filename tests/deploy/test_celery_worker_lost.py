"""A Celery worker killed while it runs a step: the step runs again and the run succeeds,
publishing what an in-process run publishes (`mesh worker`'s settings: late acknowledgement,
the task handed back when its process is lost).

A whole worker killed with RabbitMQ (the broker requeues the task when its connection
drops), the step's process alone with Redis (the worker requeues it). A whole worker
killed with Redis is not rescued in time: its task waits out the visibility timeout. A
worker stopped by SIGTERM lets its running step end first."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.localstack import wait_for
from tests.deploy.test_celery import Distributed, in_process_then_workers, materializing, published_digests

pytestmark = pytest.mark.slow

SLOW = "marketing.customer_lifetime_value"
STEP = SLOW.replace(".", "__")


def slow_down(domains):
    """The pandas product waits before it transforms: its step runs long enough to be killed in."""
    module = domains / "marketing" / "products" / "customer_lifetime_value.py"
    module.write_text(module.read_text().replace("    lines = ", "    __import__('time').sleep(4)\n    lines = ", 1))


def kill(step_process: int, whole_worker: bool) -> None:
    """SIGKILL the process running the step, as the OOM killer would, or its whole worker
    (its process group: the worker and its pool), as a lost node or pod would go."""
    if whole_worker:
        os.killpg(os.getpgid(step_process), signal.SIGKILL)
    else:
        os.kill(step_process, signal.SIGKILL)


def building(product_id: str) -> dict | None:
    """The record of the process building the product (output_port.BUILDING), once one does."""
    record = output_port.port_dir(product_id) / output_port.BUILDING
    return record.exists() and json.loads(record.read_text())


def materialize_and_meanwhile(distributed: Distributed, act_on_step_process: Callable[[int], None]) -> list[dg.EventLogEntry]:
    """`mesh materialize` through the workers, acting on the slow step's process once it builds;
    the run must succeed and publish what an in-process run publishes. Returns the step's events."""
    with materializing(distributed.env) as run:
        first = wait_for(lambda: building(SLOW), 120, f"{SLOW} to start building")
        act_on_step_process(first["pid"])
        out, err = run.communicate(timeout=90)
    assert run.returncode == 0, out + err
    assert published_digests(list(distributed.expected)) == distributed.expected
    assert not building(SLOW) and output_port.failed(SLOW) is None
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        return [e for e in instance.all_logs(record.dagster_run.run_id) if e.step_key == STEP]


def outcomes(events: list[dg.EventLogEntry]) -> list[dg.DagsterEventType]:
    ends = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
    return [e.dagster_event_type for e in events if e.dagster_event_type in ends]


@pytest.mark.parametrize("broker, whole_worker", [("rabbitmq", True), ("redis", False)])
def test_a_step_whose_worker_is_killed_runs_again(broker, whole_worker, mesh_dir, domains_copy, dagster_home, monkeypatch, processes, tmp_path):
    slow_down(domains_copy)
    distributed = in_process_then_workers(broker, mesh_dir, processes, tmp_path)
    monkeypatch.setenv("MESH_DATA_DIR", str(distributed.data))
    events = materialize_and_meanwhile(distributed, lambda step_process: kill(step_process, whole_worker))
    # Dagster records both attempts of the step, the first without an outcome; the killed
    # attempt's record of the build gave way to the second attempt's outcome.
    assert outcomes(events) == [dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS]
    hosts = [e.dagster_event.engine_event_data.metadata["Celery worker"].value for e in events
             if e.dagster_event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in e.dagster_event.engine_event_data.metadata]
    assert len(hosts) == 2
    if whole_worker:
        assert hosts[0] != hosts[1]


def test_a_worker_stopped_by_sigterm_finishes_its_step_first(mesh_dir, domains_copy, dagster_home, monkeypatch, processes, tmp_path):
    """A rolling update: Kubernetes sends SIGTERM to the worker's process (`mesh worker` became
    Celery's), which stops taking tasks, lets its running step end, then exits."""
    slow_down(domains_copy)
    distributed = in_process_then_workers("rabbitmq", mesh_dir, processes, tmp_path)
    monkeypatch.setenv("MESH_DATA_DIR", str(distributed.data))
    stopped = []

    def stop_its_worker(step_process: int) -> None:
        stopped.append(os.getpgid(step_process))  # the worker's process, the leader of the group it started
        os.kill(stopped[0], signal.SIGTERM)

    events = materialize_and_meanwhile(distributed, stop_its_worker)
    assert outcomes(events) == [dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS]  # once, to its end
    [worker] = [p for p in processes.started if p.pid == stopped[0]]
    assert worker.wait(timeout=30) == 0
