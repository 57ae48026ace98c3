"""Start and stop a real `dagster dev` on the sample mesh, for tests that need the daemon or the UI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from platform_lib.localstack import free_port
from platform_lib.scaffold import workspace_file
from platform_lib.storage import REPO_ROOT

BIN = Path(sys.executable).parent


@dataclass
class DagsterDev:
    process: subprocess.Popen
    port: int
    env: dict[str, str]
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    def mesh(self, *args: str) -> subprocess.CompletedProcess:
        """Run the `mesh` CLI against the same instance and data as the server."""
        return subprocess.run([str(BIN / "mesh"), *args], env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    def stop(self) -> None:
        """dagster dev ignores SIGTERM for a long while: stop its whole process group."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


def start(
    root: Path,
    sources: Path,
    timeout: float = 180,
    published: bool = False,
    env: dict[str, str] | None = None,
) -> DagsterDev:
    """`dagster dev` on a new instance and data folder, with `env` added to this process's,
    on the workspace.yaml beside MESH_DOMAINS_DIR (the tests' sample repository's);
    `published` materializes the mesh with the CLI first, so the automation daemon starts
    with nothing missing to build."""
    home, data = root / "dagster_home", root / "mesh"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    shutil.copytree(sources, data / "sources")
    port = free_port()
    env = {**os.environ, **(env or {}), "DAGSTER_HOME": str(home), "MESH_DATA_DIR": str(data), "PYTHONPATH": str(REPO_ROOT)}
    log = root / "dagster_dev.log"
    if published:
        built = subprocess.run([str(BIN / "mesh"), "materialize"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        if built.returncode != 0:
            raise RuntimeError(f"mesh materialize failed before dagster dev started:\n{built.stdout}\n{built.stderr}")
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-w", str(workspace_file()), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = DagsterDev(process, port, env, data, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                return server
        except OSError:
            time.sleep(1)
    server.stop()
    raise RuntimeError(f"dagster dev did not answer within {timeout} s:\n{log.read_text()[-3000:]}")
