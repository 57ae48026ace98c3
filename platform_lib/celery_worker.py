"""The Celery app of the mesh's workers: dagster-celery's, except that a step's task first
looks at its run (`dagster-celery worker start -A platform_lib.celery_worker`).

A step's task can reach a worker after its run has ended: sent by a `mesh materialize`
killed before any worker took it (the next one failed the run), or handed back by Redis
after its visibility timeout once the daemon had failed the run. dagster-celery's task runs
the step all the same, outside the pool slot its run held and gave back: a second writer
of the domain's DuckDB file, publishing for a failed run. This one drops it.
"""

from __future__ import annotations

import celery
from celery.utils.log import get_task_logger
from dagster import DagsterInstance
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import unpack_value
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

logger = get_task_logger(__name__)


class StepOfARunGoingOn(celery.Task):
    """dagster-celery's step task, run only while the step's run has not ended."""

    def __call__(self, *args, **kwargs):
        step = unpack_value(kwargs["execute_step_args_packed"], as_type=ExecuteStepArgs)
        with DagsterInstance.from_ref(step.instance_ref) as instance:
            run = instance.get_run_by_id(step.run_id)
        if run is None or run.is_finished:
            status = run.status.value if run else "not in the instance"
            logger.warning("step %s not run: its run %s is %s", ", ".join(step.step_keys_to_execute or []), step.run_id, status)
            return []  # no events: whoever still waits for them gets none
        return super().__call__(*args, **kwargs)


app = make_app()
execute_plan = create_task(app, base=StepOfARunGoingOn)
