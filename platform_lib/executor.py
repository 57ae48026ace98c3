"""Which Dagster executor runs a product's steps, chosen by the deployment, not the domain.

    MESH_EXECUTOR       unset or `in_process`: Dagster's default (local development)
                        `celery`: each step is a task on a Celery worker (scale-out)
    MESH_CELERY_BROKER  the broker URL, read where the run starts (default: local RabbitMQ)
    MESH_CELERY_BACKEND the result backend URL (default: rpc://, results over the broker)
    MESH_CELERY_QUEUE   the queue the steps go to; workers listen on it (default: dagster)
    MESH_CELERY_WAIT_FOR_WORKERS
                        `1`: `mesh materialize` sends its steps even when no worker
                        listens on the queue (workers started on demand, scaled on the
                        queue's length); unset, it refuses to start such a run

Broker and backend are passed as environment references, so credentials never land in
a run's stored configuration. Celery workers import the same code (same repository
path) and reach the same instance: run and event storage must be shared (PostgreSQL).

What makes a step survive its worker's death (late acknowledgement, a task handed back
when its process is lost, Redis' visibility timeout) is read by the workers only, so it
lives in their config, deploy/celery.yaml, not here.
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"


def executor_name() -> str:
    name = os.environ.get("MESH_EXECUTOR") or "in_process"
    if name not in ("in_process", "celery"):
        raise ValueError(f"MESH_EXECUTOR={name!r}: expected 'in_process' or 'celery'")
    return name


def _broker() -> str:
    return os.environ.get("MESH_CELERY_BROKER") or DEFAULT_BROKER


def _queue() -> str:
    return os.environ.get("MESH_CELERY_QUEUE") or "dagster"


def missing_workers() -> str | None:
    """Why a run's steps sent now would wait with no end, or None.

    A step's task waits in the queue until a worker takes it, and a `mesh materialize`
    waiting for it cannot be stopped by Ctrl-C (dagster-celery waits for a worker to answer
    its revocation). So the CLI asks the workers first which queues they listen on (one
    second: the time Celery gives them to answer), unless the deployment starts workers on
    demand."""
    if os.environ.get("MESH_CELERY_WAIT_FOR_WORKERS") == "1":
        return None
    from celery import Celery

    app = Celery(broker=_broker())
    connection = app.connection_for_write()
    shown = connection.as_uri()  # the password masked
    try:
        with connection:
            connection.ensure_connection(max_retries=1)
        answers = app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception as error:  # kombu's OperationalError, whatever the transport
        return f"cannot reach the Celery broker {shown} (MESH_CELERY_BROKER): {error}"
    finally:
        app.close()
    queue = _queue()
    if any(q["name"] == queue for queues in answers.values() for q in queues):
        return None
    found = "; ".join(f"{worker} on {', '.join(q['name'] for q in queues)}" for worker, queues in sorted(answers.items()))
    return (
        f"no Celery worker listens on queue {queue!r} (MESH_CELERY_QUEUE) at {shown}"
        f"{f' (listening: {found})' if found else ''}: the run's steps would wait for one, for good. Start one "
        f"(`dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml -q {queue}`, deploy/README.md), or set "
        "MESH_CELERY_WAIT_FOR_WORKERS=1 where workers start on demand"
    )


def _from_env(variable: str, default: str) -> dict[str, str] | str:
    """A reference to the variable when it is set (resolved at run time), else the default."""
    return {"env": variable} if variable in os.environ else default


def celery_executor() -> dg.ExecutorDefinition:
    from celery.exceptions import DuplicateTaskNameWarning
    from dagster_celery import celery_executor as executor

    # dagster-celery registers its step task again for every step it sends, and Celery 5.7
    # warns of a second callable under one name. The run only sends the task, by name, to
    # the workers, which register it once: the warning would only print a block of noise.
    warnings.filterwarnings("ignore", "Task name 'execute_plan' is already registered", DuplicateTaskNameWarning)
    return executor.configured(
        {
            "broker": _from_env("MESH_CELERY_BROKER", DEFAULT_BROKER),
            "backend": _from_env("MESH_CELERY_BACKEND", "rpc://"),
            "config_source": {"task_default_queue": _queue()},
        },
        name="mesh_celery",
    )


def mesh_executor() -> dg.ExecutorDefinition | None:
    """The executor for this process's code location; None keeps Dagster's default."""
    return celery_executor() if executor_name() == "celery" else None
