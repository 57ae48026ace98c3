"""dagster-celery's executor, with a run that stops when it is told to, and that says why a
worker could not run a step.

Told to stop (Ctrl-C or SIGTERM to `mesh materialize`, or the UI's Terminate), dagster-celery's
run loop revokes its steps' tasks and waits until each task's result says it was revoked or
done. Only a live worker writes that result: with none left (all stopped or lost, or a run
sent with MESH_CELERY_WAIT_FOR_WORKERS=1 before any started), the run waited for good, deaf
to another Ctrl-C, its domains' pool slots held.

Here, told to stop, the run stops waiting for the steps that never started: a worker that
takes such a task later finds the run ended and builds nothing (`refuse_ended_run`). It
still waits for the steps running on workers, which end as they would have (a graceful
stop), until it is told to stop a second time (or, from the UI, forcibly terminated). The
run gives back the pool slots of the steps it did not wait for when its loop ends, however
it ends; the slot of a step it waited for, the loop gave back when it saw the step end.

A step's task that fails on its worker before the step records anything (the worker lacks
a variable of the instance's settings, or cannot import the code) fails the run with an
error dagster-celery gives to no step: it becomes an engine event of the step, which the
run's summary shows for the step's products.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import dagster as dg
from celery.exceptions import TaskRevokedError
from dagster._core.errors import DagsterSubprocessError
from dagster._core.events import EngineEventData
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

from platform_lib.outcomes import STOPPING
from platform_lib.progress import SAY


class _Task:
    """A step's Celery task as dagster-celery's loop reads it, ready once the run no longer waits for it."""

    def __init__(self, result, step_key: str, tasks: _Tasks):
        self.result, self.step_key, self.tasks = result, step_key, tasks

    def ready(self) -> bool:
        return self.result.ready() or self.tasks.gave_up(self.step_key)

    def get(self):
        if not self.result.ready():
            raise TaskRevokedError(f"the run stopped waiting for step {self.step_key}")
        try:
            return self.result.get()
        except TaskRevokedError:
            raise
        except Exception:  # raised by the task on its worker: dagster-celery fails the run with it
            self.tasks.failed_on_workers[self.step_key] = serializable_error_info_from_exc_info(sys.exc_info())
            raise

    def revoke(self) -> None:
        self.result.revoke()


class _Tasks:
    """The tasks a run sent, and which of them it no longer waits for."""

    def __init__(self, context: PlanOrchestrationContext, plan: ExecutionPlan):
        self.context, self.plan = context, plan
        self.sent: list[str] = []
        self.given_up: set[str] = set()
        self.stops = 0
        self.failed_on_workers: dict[str, SerializableErrorInfo] = {}
        self.said: list[dg.DagsterEvent] = []
        self.looked_at_run = 0.0

    def submit(self, app, context, step, queue, priority, known_state) -> _Task:
        self.sent.append(step.key)
        return _Task(_submit_task(app, context, step, queue, priority, known_state), step.key, self)

    def started(self) -> set[str]:
        """The steps a worker started (their events are in the instance, written by the workers)."""
        run_id = self.context.run_id
        return {e.step_key for e in self.context.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}

    def ended(self) -> set[str]:
        ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
        return {e.step_key for e in self.context.instance.all_logs(self.context.run_id, of_type=ends)}

    def gave_up(self, step_key: str) -> bool:
        """Whether the run no longer waits for the step. A run marked canceled while it waits
        for steps running on workers is a second stop: the UI's forced termination marks it
        so and reaches no run process (the first Terminate left the run `CANCELING`, which
        the UI does not terminate again)."""
        if self.stops == 1 and self._marked_canceled():
            self.said.append(self.stop())
        return step_key in self.given_up

    def _marked_canceled(self) -> bool:
        """Whether the run is marked canceled, looked up at most once a second (dagster-celery's tick)."""
        if time.monotonic() - self.looked_at_run < 1:
            return False
        self.looked_at_run = time.monotonic()
        run = self.context.instance.get_run_by_id(self.context.run_id)
        return run is not None and run.status == dg.DagsterRunStatus.CANCELED

    def stop(self) -> dg.DagsterEvent:
        """Told to stop once more: stop waiting for the steps never started, the second time
        for every step. Says what the run still waits for, among the progress lines too."""
        self.stops += 1
        started, ended = self.started(), self.ended()
        waiting = [k for k in self.sent if k not in ended and k not in self.given_up]
        running = [k for k in waiting if k in started]
        never_started = [k for k in waiting if k not in started]
        said = []
        if self.stops == 1:
            self.given_up.update(never_started)
            if never_started:
                said.append(f"not waiting for what never started: {self._built_by(never_started)}")
            if running:
                said.append(f"waiting for what runs on workers to end: {self._built_by(running)} (stop again not to wait)")
        else:
            self.given_up.update(waiting)
            if running:
                said.append(f"not waiting for what runs on workers: {self._built_by(running)}; "
                            "it may still end there, and publish what passes its checks")
        message = f"stopping: {'; '.join(said) or 'nothing to wait for'}"
        return dg.DagsterEvent.engine_event(self.context, message, EngineEventData(metadata={SAY: message, STOPPING: self.stops}))

    def _built_by(self, step_keys: list[str]) -> str:
        """What the steps build (products, dbt models), as the mesh's users know them."""
        def built(key: str) -> list[str]:
            assets = [".".join(o.asset_key.path) for o in self.plan.get_step_by_key(key).step_outputs if o.asset_key]
            return assets or [key]

        return ", ".join(name for key in step_keys for name in built(key))

    def free_slots(self, step_keys: list[str]) -> None:
        """Give back the pool slots the run's steps still hold when its loop ends.

        dagster-celery takes a step's slot before it sends the step's task, and its loop gives
        it back when it sees the step end (the step's own end, on a worker, frees nothing): a
        step never started (its sending failed, the run failed or stopped first) would hold it
        for good, and so would a step the run stopped waiting for. (If that step still runs on
        a live worker, the next run of its domain may meet it at the DuckDB file: told twice to
        stop, the run does not wait for it, and once the run has ended nothing would free the
        slot when the step ends.)"""
        storage, started = self.context.instance.event_log_storage, self.started()
        for step_key in step_keys:
            if step_key not in started or step_key in self.given_up:
                storage.free_concurrency_slot_for_step(self.context.run_id, step_key)


def _interrupted(event: dg.DagsterEvent) -> bool:
    """Whether `event` is dagster-celery's loop saying it was told to stop."""
    return event.is_engine_event and "steps_interrupted" in event.engine_event_data.metadata


class MeshCeleryExecutor(CeleryExecutor):
    """dagster-celery's run loop, sending the steps through `_Tasks`."""

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[dg.DagsterEvent]:
        tasks = _Tasks(plan_context, execution_plan)
        try:
            for event in core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=tasks.submit):
                yield from tasks.said  # a stop seen while the loop waited
                tasks.said.clear()
                yield event
                if _interrupted(event):
                    yield tasks.stop()
        except DagsterSubprocessError:
            # A task failed on its worker before its step recorded anything (a worker without
            # the instance's variables, say): the error, only in the worker's log, goes to its step.
            for step_key, error in tasks.failed_on_workers.items():
                step = plan_context.for_step(execution_plan.get_step_by_key(step_key))
                yield dg.DagsterEvent.engine_event(step, "a worker could not run the step", EngineEventData.engine_error(error))
            raise
        finally:
            tasks.free_slots(execution_plan.step_keys_to_execute)


@dg.executor(name="celery", config_schema=CELERY_CONFIG, requirements=dg.multiple_process_executor_requirements())
def mesh_celery_executor(init_context: dg.InitExecutorContext) -> MeshCeleryExecutor:
    """dagster-celery's executor, its configuration the same."""
    config = init_context.executor_config
    return MeshCeleryExecutor(
        retries=RetryMode.from_config(config["retries"]),
        broker=config.get("broker"),
        backend=config.get("backend"),
        include=config.get("include"),
        config_source=config.get("config_source"),
    )
