"""Which Dagster executor runs a product's steps, chosen by the deployment, not the domain.

    MESH_EXECUTOR       unset or `in_process`: Dagster's default (local development)
                        `celery`: each step is a task on a Celery worker (scale-out)
    MESH_CELERY_BROKER  the broker URL, read where the run starts (default: local RabbitMQ)
    MESH_CELERY_BACKEND the result backend URL (default: rpc://, results over the broker)
    MESH_CELERY_QUEUE   the queue the steps go to; workers listen on it (default: dagster)

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
            "config_source": {"task_default_queue": os.environ.get("MESH_CELERY_QUEUE") or "dagster"},
        },
        name="mesh_celery",
    )


def mesh_executor() -> dg.ExecutorDefinition | None:
    """The executor for this process's code location; None keeps Dagster's default."""
    return celery_executor() if executor_name() == "celery" else None
