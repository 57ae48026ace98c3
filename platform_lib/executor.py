"""Which Dagster executor runs a product's steps, chosen by the deployment, not the domain,
and how the Celery workers that run them start (`mesh worker`).

    MESH_EXECUTOR       unset or `in_process`: Dagster's default (local development)
                        `celery`: each step is a task on a Celery worker (scale-out)
    MESH_CELERY_BROKER  the broker URL (default: local RabbitMQ)
    MESH_CELERY_BACKEND the result backend URL (default: rpc://, results over the broker)
    MESH_CELERY_QUEUE   the queue the steps go to and the workers listen on (default: dagster)
    MESH_CELERY_WAIT_FOR_WORKERS
                        `1`: `mesh materialize` sends its steps even when no worker
                        listens on the queue (workers started on demand, scaled on the
                        queue's length); unset or `0`, it refuses to start such a run

Where runs start and where workers run, the same variables mean the same broker, backend
and queue. Broker and backend are passed to runs as environment references, so
credentials never land in a run's stored configuration, and workers read them from their
environment when they start. Celery workers import the same code (same repository path)
and reach the same instance: run and event storage must be shared (PostgreSQL).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `mesh` imports this module for SettingError, before (or without) Dagster
    import dagster as dg

DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
WORKER_CONFIG_DIR = Path(__file__).resolve().parent.parent / "deploy"
"""Where `dagster_celery_config.py` is, the module dagster-celery's worker app reads."""


class SettingError(ValueError):
    """A variable above set to a value it cannot take: `mesh` prints it as one line."""


def executor_name() -> str:
    name = os.environ.get("MESH_EXECUTOR") or "in_process"
    if name not in ("in_process", "celery"):
        raise SettingError(f"MESH_EXECUTOR={name!r}: expected 'in_process' or 'celery'")
    return name


def _waits_for_workers() -> bool:
    value = os.environ.get("MESH_CELERY_WAIT_FOR_WORKERS") or "0"
    if value not in ("0", "1"):
        raise SettingError(f"MESH_CELERY_WAIT_FOR_WORKERS={value!r}: expected 1 (send the steps with no worker listening) or 0")
    return value == "1"


def _broker() -> str:
    return os.environ.get("MESH_CELERY_BROKER") or DEFAULT_BROKER


def _backend() -> str:
    return os.environ.get("MESH_CELERY_BACKEND") or DEFAULT_BACKEND


def _queue() -> str:
    return os.environ.get("MESH_CELERY_QUEUE") or "dagster"


def missing_workers() -> str | None:
    """Why a run's steps sent now would wait with no end, or None.

    A step's task waits in the queue until a worker takes it, and a `mesh materialize`
    waits for it until stopped (`celery_run`). So the CLI asks the workers first which
    queues they listen on (one second, Celery's time for their answers; three more when
    none on the queue answered: a busy machine), unless the deployment starts workers on
    demand."""
    if _waits_for_workers():
        return None
    from celery import Celery
    from kombu.exceptions import OperationalError

    app = Celery(broker=_broker())
    connection = app.connection_for_write()
    shown = connection.as_uri()  # the password masked
    queue = _queue()
    try:
        with connection:
            connection.ensure_connection(max_retries=1)
        for seconds in (1.0, 3.0):
            answers = app.control.inspect(timeout=seconds).active_queues() or {}
            if any(q["name"] == queue for queues in answers.values() for q in queues):
                return None
    except (OperationalError, OSError) as error:
        return f"cannot reach the Celery broker {shown} (MESH_CELERY_BROKER): {error}"
    finally:
        app.close()
    found = "; ".join(f"{worker} on {', '.join(q['name'] for q in queues)}" for worker, queues in sorted(answers.items()))
    return (
        f"no Celery worker listens on queue {queue!r} (MESH_CELERY_QUEUE) at {shown}"
        f"{f' (listening: {found})' if found else ''}: the run's steps would wait for one, for good. Start one "
        "(`mesh worker`, with the same MESH_CELERY_* variables; deploy/README.md), or set "
        "MESH_CELERY_WAIT_FOR_WORKERS=1 where workers start on demand"
    )


def _from_env(variable: str, default: str) -> dict[str, str] | str:
    """A reference to the variable when it is set (resolved at run time), else the default."""
    return {"env": variable} if variable in os.environ else default


def celery_executor() -> dg.ExecutorDefinition:
    from celery.exceptions import DuplicateTaskNameWarning

    from platform_lib.celery_run import mesh_celery_executor

    # dagster-celery registers its step task again for every step it sends, and Celery 5.7
    # warns of a second callable under one name. The run only sends the task, by name, to
    # the workers, which register it once: the warning would only print a block of noise.
    warnings.filterwarnings("ignore", "Task name 'execute_plan' is already registered", DuplicateTaskNameWarning)
    return mesh_celery_executor.configured(
        {
            "broker": _from_env("MESH_CELERY_BROKER", DEFAULT_BROKER),
            "backend": _from_env("MESH_CELERY_BACKEND", DEFAULT_BACKEND),
            "config_source": {"task_default_queue": _queue()},
        },
        name="mesh_celery",
    )


def mesh_executor() -> dg.ExecutorDefinition | None:
    """The executor for this process's code location; None keeps Dagster's default."""
    return celery_executor() if executor_name() == "celery" else None


def worker_settings() -> dict[str, object]:
    """The Celery settings of a worker (deploy/dagster_celery_config.py imports them).

    A step survives its worker's death: the worker acknowledges a step's task only when the
    step ends, and hands it back when the process running it dies, so the step runs again on
    a worker instead of its run waiting for good. Redis hands a task back after the
    visibility timeout (seconds) too, so it is as long as a run may last
    (`max_runtime_seconds` in deploy/dagster.yaml); RabbitMQ's consumer timeout (30 minutes
    by default) must be raised on the server likewise (deploy/README.md)."""
    return {
        "broker_url": _broker(),
        "result_backend": _backend(),
        "worker_prefetch_multiplier": 1,  # a worker holds no more steps than it has processes: others take the rest
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_transport_options": {"visibility_timeout": 14400},
    }


def worker_command(name: str | None, celery_options: list[str]) -> tuple[list[str], dict[str, str]]:
    """Celery's own worker on `dagster_celery.app`, listening on the runs' queue, and its environment.

    Not `dagster-celery worker start`, which writes the broker and backend URLs (a password
    included) into a module under DAGSTER_HOME at every start, needs `-q` repeated by hand,
    and runs Celery as its child: a SIGTERM (Kubernetes stopping a pod) ended it and left
    Celery to be killed without its warm shutdown. This process becomes Celery's."""
    bin_dir = Path(sys.executable).parent
    node = name or f"mesh-{os.getpid()}"  # unique on its host while it runs
    node += "" if "@" in node else "@%h"
    command = [str(bin_dir / "celery"), "-A", "dagster_celery.app", "worker", "-Q", _queue(), "-n", node, "--loglevel", "INFO"]
    repository = str(WORKER_CONFIG_DIR.parent)  # the steps import the domains' code from there
    path = os.pathsep.join(p for p in (str(WORKER_CONFIG_DIR), repository, os.environ.get("PYTHONPATH")) if p)
    return [*command, *celery_options], {**os.environ, "PYTHONPATH": path}
