"""The whole sample mesh through two real Celery workers (RabbitMQ or Redis broker,
PostgreSQL instance), compared product by product with an in-process run of the same sources."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import dagster as dg
import pytest

from platform_lib import output_port
from platform_lib.localstack import celery_env
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT

pytestmark = pytest.mark.slow

WORKERS = ["w1", "w2"]


def published_digests(product_ids: list[str]) -> dict[str, str | None]:
    return {i: output_port.digest(s.path) if (s := output_port.current(i)) else None for i in product_ids}


@contextlib.contextmanager
def materializing(env: dict[str, str], *args: str, stderr: int | IO[str] = subprocess.PIPE) -> Iterator[subprocess.Popen]:
    """`mesh materialize ARGS` in its own process group (text output), SIGKILLed, as the OOM
    killer would, if it still runs when the block ends."""
    run = subprocess.Popen([sys.executable, "-m", "platform_lib.cli", "materialize", *args], cwd=REPO_ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
    try:
        yield run
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        run.stdout.close()


@dataclass(frozen=True)
class Distributed:
    """The whole mesh published by an in-process run (`expected`, by product), and workers on
    a fresh queue of `broker` for a distributed run into its own data folder (`env`)."""

    expected: dict[str, str | None]
    env: dict[str, str]
    data: Path
    nodes: list[str]


def in_process_then_workers(broker: str, mesh_dir: Path, processes, tmp_path: Path) -> Distributed:
    products = [p for d in load_mesh() for p in d.products]
    assert all(o.ok for o in materialize_products(products, instance=dg.DagsterInstance.ephemeral()))
    expected = published_digests([p.id for p in products])
    data = tmp_path / "distributed"
    shutil.copytree(mesh_dir / "sources", data / "sources")
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue, broker), "MESH_DATA_DIR": str(data)}
    return Distributed(expected, env, data, processes.start_celery_workers(WORKERS, queue, env))


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_celery_workers_publish_what_an_in_process_run_publishes(broker, mesh_dir, dagster_home, monkeypatch, processes, tmp_path):
    products = [p for d in load_mesh() for p in d.products]
    distributed = in_process_then_workers(broker, mesh_dir, processes, tmp_path)
    env, nodes = distributed.env, distributed.nodes

    run = subprocess.run([sys.executable, "-m", "platform_lib.cli", "materialize"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    # Only the progress lines: no warning of Celery's about dagster-celery's way of sending tasks.
    assert "Warning" not in run.stderr, run.stderr
    # The steps ran on the workers; the progress lines come from their events in the instance.
    for product in products:
        assert re.search(rf"^\d\d:\d\d:\d\d  {product.id}: published, [\d,]+ rows, checks \d+ ok \(\d+\.\d s\)$", run.stderr, re.M), run.stderr

    monkeypatch.setenv("MESH_DATA_DIR", str(distributed.data))
    assert published_digests(list(distributed.expected)) == distributed.expected
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        events = instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        hosts = [e.dagster_event.engine_event_data.metadata["Celery worker"].value for e in events
                 if e.dagster_event.engine_event_data.metadata.get("Celery worker")]
    assert len(hosts) == len(products)
    assert {h.split("@")[0] for h in hosts} == set(nodes)
