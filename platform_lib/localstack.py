"""The production pieces on one machine, for the deployment tests and benchmarks: a
private PostgreSQL database, a DAGSTER_HOME with deploy/dagster.yaml, Celery workers
and servers, each in its own process group so that stopping it stops its children.

Nothing here is used by a deployment itself; it shows, runnable, what deploy/README.md
describes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from platform_lib.storage import REPO_ROOT

BIN = Path(sys.executable).parent
PG_HOST = os.environ.get("MESH_LOCAL_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("MESH_LOCAL_PG_PORT", "5432")
PG_USER = os.environ.get("MESH_LOCAL_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("MESH_LOCAL_PG_PASSWORD", "")  # none: trust authentication, as on a developer's machine
BROKER = os.environ.get("MESH_LOCAL_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
REDIS = os.environ.get("MESH_LOCAL_REDIS", "redis://127.0.0.1:6379")
BROKERS = {"rabbitmq": (BROKER, "rpc://"), "redis": (f"{REDIS}/0", f"{REDIS}/1")}
"""Celery broker and result backend URLs by broker kind (rpc:// results travel over AMQP only)."""

T = TypeVar("T")
LISTEN_PORTS = range(20000, 32768)
"""Ports the test servers listen on: below Linux's ephemeral range (32768 and up), which
the kernel hands out for port 0 and outgoing connections, so that no other process (a code
server `dagster dev` starts, a client) takes a port between our pick and the server's bind."""


def pg_connect(database: str):
    import psycopg2

    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD or None, dbname=database)


def _admin(sql: str) -> None:
    connection = pg_connect("postgres")
    connection.autocommit = True
    try:
        connection.cursor().execute(sql)
    finally:
        connection.close()


@contextmanager
def postgres_database(prefix: str = "mesh") -> Iterator[str]:
    """A fresh database holding Dagster's instance tables, dropped on exit, so parallel runs
    never share instance state.

    The tables are made here, once, as a deployment does with `dagster instance migrate`
    before it starts its services: processes that start together on an empty database
    (two Celery workers) would each try to create them, and one fails.
    """
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import get_conn_string

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        tables = DagsterPostgresStorage(get_conn_string(PG_USER, PG_PASSWORD, PG_HOST, name, PG_PORT, scheme="postgresql+psycopg2"))
        for storage in (tables.run_storage, tables.event_log_storage, tables.schedule_storage):
            storage.dispose()
        yield name
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def instance_env(home: Path, database: str) -> dict[str, str]:
    """Write deploy/dagster.yaml into `home`; return the variables that point it at `database`."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": PG_PORT,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "DAGSTER_PG_DB": database,
    }


def celery_env(queue: str, broker: str = "rabbitmq") -> dict[str, str]:
    """What code servers, the CLI and workers need to agree on to use Celery."""
    broker_url, backend_url = BROKERS[broker]
    return {
        "MESH_EXECUTOR": "celery",
        "MESH_CELERY_BROKER": broker_url,
        "MESH_CELERY_BACKEND": backend_url,
        "MESH_CELERY_QUEUE": queue,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO_ROOT),
    }


def free_port() -> int:
    """A port in LISTEN_PORTS nothing listens on now."""
    while True:
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Processes:
    """Servers and workers, each in its own process group; `stop_all` stops every group."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def start_celery_workers(self, names: list[str], queue: str, env: dict[str, str], timeout: float = 60) -> list[str]:
        """One single-slot worker per name on `queue`; returns their Celery node names once ready."""
        nodes = [f"{name}-{queue}" for name in names]
        for name, node in zip(names, nodes):
            self.start(
                name,
                [str(BIN / "mesh"), "worker", "-n", node, "--", "--concurrency", "1", "--without-gossip", "--without-mingle"],
                {**env, "MESH_CELERY_QUEUE": queue},
            )
        for name, process in zip(names, self.started[-len(names):]):
            try:
                wait_for(lambda: " ready." in self.log(name) or process.poll() is not None, timeout, f"Celery worker {name}")
            except TimeoutError as error:
                raise TimeoutError(f"{error}; its log ends:\n{self.log(name)[-3000:]}") from None
            if process.poll() is not None:
                raise RuntimeError(f"Celery worker {name} exited with {process.returncode}; its log ends:\n{self.log(name)[-3000:]}")
        return nodes

    def stop_all(self, grace: float = 15) -> None:
        for process in self.started:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.started:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for process in self.started:
            _signal_group(process, signal.SIGKILL)  # children that outlived their group leader
        self.started = []  # never signal these ids again: they may be reused by others


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
