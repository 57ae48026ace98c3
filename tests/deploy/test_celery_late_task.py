"""A dbt step's Celery task delivered after its run ended builds and publishes nothing.

A task is delivered late when its worker died and the broker hands it out again (see
test_celery_worker_lost.py), or when it was still queued as its run's process was killed
and a later `mesh materialize` failed that run: test_celery_killed.py starts a worker on
such a queue for a product step. The dbt step looks at its run the same way, here with
dagster-celery's own task, built as its executor builds it and run by Celery in this
process (`apply`) against the production instance on PostgreSQL: what a worker would run."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.retries import RetryMode
from dagster._grpc.types import ExecuteStepArgs
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task
from dagster_shared.serdes import deserialize_value, pack_value

from platform_lib import output_port, whole_mesh
from platform_lib.factories.quality import asset_key
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT


PRODUCT, STEP = "orders.order_lines", "dbt_orders"


def test_a_dbt_task_delivered_after_its_run_ended_publishes_nothing(mesh_dir, dagster_home):
    first = [p for d in load_mesh() if d.path.name in ("customers", "orders") for p in d.products]  # the products and their inputs
    with dg.DagsterInstance.get() as instance:
        assert all(o.ok for o in materialize_products(first, instance=instance))
        served = output_port.current(PRODUCT)

        job = ReconstructableRepository.for_module(whole_mesh.__name__, "defs", working_directory=str(REPO_ROOT)).get_reconstructable_job(whole_mesh.JOB)
        run = instance.create_run_for_job(job.get_definition(), asset_selection=frozenset({asset_key(PRODUCT)}))
        instance.report_run_failed(run)  # as `mesh materialize` does for a run whose process is gone
        task = create_task(make_app())
        args = ExecuteStepArgs(job_origin=job.get_python_origin(), run_id=run.run_id, step_keys_to_execute=[STEP],
                               instance_ref=instance.get_ref(), retry_mode=RetryMode.DISABLED, print_serialized_events=True)
        events = [deserialize_value(e) for e in task.apply(kwargs={"execute_step_args_packed": pack_value(args), "executable_dict": job.to_dict()}).get()]

        [failure] = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert f"its run {run.run_id} ended (FAILURE) before the step started" in failure.step_failure_data.error.message
        assert not any(e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION for e in events)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    # The served version is the first run's, and the port keeps no trace of the late step.
    assert output_port.current(PRODUCT) == served
    assert not (output_port.port_dir(PRODUCT) / output_port.BUILDING).exists() and output_port.failed(PRODUCT) is None
