"""The production topology on one machine: one gRPC code server per domain, the webserver
and the daemon against them, Celery workers, all on the PostgreSQL instance. The
workspace loads; runs launched through GraphQL queue under their domain's tag, are
dequeued one at a time and their steps run on the workers; one terminated while it waits
for a worker ends."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
import uuid

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._grpc.client import DagsterGrpcClient

from platform_lib import output_port
from platform_lib.mesh import load_mesh
from platform_lib.localstack import BIN, celery_env, free_port, wait_for
from platform_lib.storage import REPO_ROOT
from tests.deploy.test_celery_killed import no_slot_claimed

pytestmark = pytest.mark.slow

WORKSPACE = """{
  workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError {
      __typename
      ... on PythonError { message }
      ... on RepositoryLocation { repositories { name assetNodes { assetKey { path } } } }
    }
  } } }
}"""

LAUNCH = """mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on PythonError { message }
  }
}"""


TERMINATE = """mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on PythonError { message } ... on TerminateRunFailure { message } }
}"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


def serves(port: int) -> bool:
    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("mesh")
        return True
    except DagsterUserCodeUnreachableError:
        return False


def test_domain_code_servers_serve_the_webserver_and_the_daemon(mesh_dir, dagster_home, processes, tmp_path):
    mesh = load_mesh()
    # deploy/workspace.grpc.yaml's servers of the sample domains, the ones started here (a fork lists its own there too).
    grpc = yaml.safe_load((REPO_ROOT / "deploy" / "workspace.grpc.yaml").read_text(encoding="utf-8"))
    workspace = tmp_path / "workspace.grpc.yaml"
    workspace.write_text(yaml.safe_dump(
        {"load_from": [e for e in grpc["load_from"] if e["grpc_server"]["location_name"] in {d.path.name for d in mesh}]}
    ), encoding="utf-8")
    queue = f"mesh-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **celery_env(queue)}
    nodes = processes.start_celery_workers(["w1", "w2"], queue, env)
    worker_processes = processes.started[-2:]
    servers = {}  # by log name: (port, process)
    for domain in mesh:
        name = domain.path.name
        port = free_port()
        env[f"MESH_{name.upper()}_HOST"], env[f"MESH_{name.upper()}_PORT"] = "127.0.0.1", str(port)
        servers[f"code-server-{name}"] = port, processes.start(
            f"code-server-{name}",
            [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
             "-f", str(domain.path / "definitions.py"), "-d", ".", "--location-name", name],
            env,
        )
    for log, (port, server) in servers.items():
        wait_for(lambda: server.poll() is not None or serves(port), 90, log, interval=1)
    web = free_port()
    servers["webserver"] = web, processes.start(
        "webserver", [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web)], env
    )
    wait_for(lambda: servers["webserver"][1].poll() is not None or answers(web), 90, "the webserver", interval=1)
    # Every answer came from the process started for it, not from a server of another test.
    for log, (_, server) in servers.items():
        assert server.poll() is None, processes.log(log)

    def loaded():
        entries = graphql(web, WORKSPACE)["workspaceOrError"]["locationEntries"]
        return entries if all(e["locationOrLoadError"] for e in entries) else None

    entries = {e["name"]: e["locationOrLoadError"] for e in wait_for(loaded, 90, "the code locations", interval=1)}
    assert set(entries) == {d.path.name for d in mesh}
    for domain in mesh:
        location = entries[domain.path.name]
        assert location["__typename"] == "RepositoryLocation", location
        [repository] = location["repositories"]
        assert {".".join(a["assetKey"]["path"]) for a in repository["assetNodes"]} >= {p.id for p in domain.products}

    selector = {"repositoryLocationName": "customers", "repositoryName": "__repository__", "jobName": "materialize_customers"}
    runs = []
    for _ in range(2):
        launched = graphql(web, LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        runs.append(launched["run"])
    for run in runs:
        assert run["status"] == "QUEUED"
        assert {"key": "dagster/code_location", "value": "customers"} in run["tags"]

    processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env)
    with dg.DagsterInstance.get() as instance:
        def finished():
            records = [instance.get_run_record_by_id(r["runId"]) for r in runs]
            return records if all(r.dagster_run.is_finished for r in records) else None

        first, second = sorted(wait_for(finished, 240, "the queued runs to finish", interval=1), key=lambda r: r.start_time)
        assert [first.dagster_run.status, second.dagster_run.status] == [dg.DagsterRunStatus.SUCCESS] * 2, processes.log("daemon")
        # One run per domain at a time: the second waited in the queue for the first.
        assert second.start_time >= first.end_time
        # The runs' steps ran on the Celery workers, not in the code server's run process.
        workers = {
            e.dagster_event.engine_event_data.metadata["Celery worker"].value.split("@")[0]
            for run in runs
            for e in instance.all_logs(run["runId"], of_type=dg.DagsterEventType.ENGINE_EVENT)
            if "Celery worker" in e.dagster_event.engine_event_data.metadata
        }
        assert workers and workers <= set(nodes)
    customers = next(d for d in mesh if d.path.name == "customers")
    assert all(output_port.current(p.id).run_id == second.dagster_run.run_id for p in customers.products)

    # Terminate in the UI a run whose workers are gone: it stops waiting for its first step,
    # which no worker started, and ends canceled (dagster-celery alone waited for good for an
    # answer to its revocation that only a worker gives).
    for worker in worker_processes:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    launched = graphql(web, LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})["launchRun"]
    run_id = launched["run"]["runId"]
    with dg.DagsterInstance.get() as instance:
        def engine_events() -> list[str]:
            return [e.message for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]

        wait_for(lambda: any(m.startswith("Submitting celery task") for m in engine_events()), 120, "the run to send its first step", interval=1)
        terminated = graphql(web, TERMINATE, {"runId": run_id})["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        record = wait_for(lambda: (r := instance.get_run_record_by_id(run_id)).dagster_run.is_finished and r, 60, "the run to end", interval=1)
        assert record.dagster_run.status == dg.DagsterRunStatus.CANCELED, processes.log("daemon")
        assert "stopping: not waiting for what never started: customers.raw_customers" in engine_events()
    assert no_slot_claimed("customers")
