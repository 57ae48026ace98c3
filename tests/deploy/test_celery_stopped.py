"""A `mesh materialize` on Celery told to stop (Ctrl-C): it stops waiting for the steps that
never started at once, worker or none, and for a step running on a worker when told again;
the run fails and gives back its pool slots. Before, with no worker left to answer
dagster-celery's revocations, it waited for good, deaf to Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import uuid

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.localstack import celery_env, wait_for
from tests.deploy.test_celery import materializing
from tests.deploy.test_celery_killed import DOMAIN, no_slot_claimed, runs, tasks_waiting
from tests.deploy.test_celery_worker_lost import SLOW, building, kill, slow_down

pytestmark = pytest.mark.slow


def test_a_run_told_to_stop_stops_waiting_for_its_steps_never_started(mesh_dir, dagster_home):
    """No worker ever listened (workers started on demand, none yet): the first step's task waits in the queue."""
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue), "MESH_CELERY_WAIT_FOR_WORKERS": "1"}
    with materializing(env, DOMAIN) as run:
        wait_for(lambda: tasks_waiting(queue) or run.poll() is not None, 120, "the run to send its first step")
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 1, out + err
    assert f"stopping: not waiting for what never started: {DOMAIN}.raw_customers\n" in err, err
    assert f"\n{DOMAIN}.raw_customers: not built: the run was stopped (Ctrl-C or SIGTERM)\n" in out, out
    assert runs() == ["FAILURE"]
    assert no_slot_claimed(DOMAIN)


def mark_canceled() -> None:
    """What the UI's forced termination does: the run marked canceled, no signal to its process."""
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records()
        instance.report_run_canceled(record.dagster_run, message="forcibly marked as canceled")


@pytest.mark.parametrize("worker_lost, stop_again, ended", [
    (False, None, "FAILURE"),
    (True, lambda run: run.send_signal(signal.SIGINT), "FAILURE"),
    (True, lambda run: mark_canceled(), "CANCELED"),
], ids=["worker-alive", "worker-lost-ctrl-c-again", "worker-lost-marked-canceled"])
def test_a_run_told_to_stop_waits_for_a_running_step_until_told_again(
    worker_lost, stop_again, ended, mesh_dir, domains_copy, dagster_home, monkeypatch, processes, tmp_path
):
    """One worker runs the slow step. Alive, it ends the step and the run stops after it; lost
    (killed with its whole process group), nobody will end it: a second Ctrl-C stops the run,
    or the run marked canceled, as the UI's forced termination does."""
    slow_down(domains_copy)
    data = tmp_path / "distributed"
    shutil.copytree(mesh_dir / "sources", data / "sources")
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue), "MESH_DATA_DIR": str(data)}
    processes.start_celery_workers(["w1"], queue, env)
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    progress = tmp_path / "progress.txt"
    with progress.open("w") as stderr, materializing(env, stderr=stderr) as run:
        step = wait_for(lambda: building(SLOW), 120, f"{SLOW} to start building")
        if worker_lost:
            kill(step["pid"], whole_worker=True)
        run.send_signal(signal.SIGINT)
        waiting = f"waiting for what runs on workers to end: {SLOW} (stop again not to wait)"
        wait_for(lambda: waiting in progress.read_text() or run.poll() is not None, 60, "the run to say what it waits for")
        assert waiting in progress.read_text(), progress.read_text()
        if stop_again:
            stop_again(run)
        out = run.communicate(timeout=60)[0]
    said = progress.read_text()
    assert run.returncode == 1, out + said
    assert "\nmarketing.segment_revenue: not built: the run was stopped (Ctrl-C or SIGTERM)\n" in out, out  # never sent
    if worker_lost:
        assert f"stopping: not waiting for what runs on workers: {SLOW}; it may still end there" in said, said
        assert f"\n{SLOW}: not built: the run was stopped (Ctrl-C or SIGTERM)\n" in out, out
        assert output_port.current(SLOW) is None
    else:
        assert f"  {SLOW}: published, " in said, said
        assert output_port.current(SLOW) is not None
    assert runs() == [ended]
    assert no_slot_claimed("marketing")
