"""dbt in a fork of the step's process, or in a Python process of its own where the
platform cannot fork, does what the `dbt` executable does: the same log events and exit
codes, and it leaves the process that started it as it was."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_lib import dbt_fork, dbt_project, output_port
from platform_lib.dbt_project import PARTIAL_PARSE, DbtProjectRef, dbt_executable
from platform_lib.storage import REPO_ROOT
from tests.helpers import run

COMMANDS = {
    "build": (["build"], 0),
    "a test that warns": (["build", "--select", "+not_null_order_lines_segment"], 0),
    "an unknown macro": (["run-operation", "no_such_macro"], 2),
    "an unknown flag": (["build", "--no-such-flag"], 2),
}


def start_dbt(how: str, args: list[str], project: DbtProjectRef, name: str):
    """`dbt <args>` in the project's mirror with a target folder of its own, as a dbt step starts it."""
    target = project.profiles_dir / "runs" / name
    target.mkdir(parents=True)
    shutil.copy(project.partial_parse_seed, target / PARTIAL_PARSE)
    env = {**os.environ, "DBT_LOG_FORMAT": "json", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_TARGET_PATH": str(target),
           "DBT_LOG_PATH": str(target), "DBT_PROFILES_DIR": str(project.write_profile())}
    args = [*args, "--profile", dbt_project.PROFILE, "--target", dbt_project.PROFILE]
    if how == "fork":
        return dbt_fork.DbtFork(args, env, str(project.link_mirror()))
    if how == "python":
        return dbt_fork.spawn(args, env, project.link_mirror())
    return subprocess.Popen([dbt_executable(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=project.link_mirror())


def output(process) -> tuple[int, list[str]]:
    """The exit code and what dbt wrote, in order: an event's name, or a line that is no event as it is."""
    lines = process.stdout.read().decode().splitlines()
    process.stdout.close()
    return process.wait(), [json.loads(line)["info"]["name"] if line.startswith("{") else line for line in lines]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_dbt_process_logs_and_exits_as_the_dbt_executable(command, published_mesh):
    args, code = COMMANDS[command]
    project = DbtProjectRef("orders", "orders")
    cwd, environment = os.getcwd(), dict(os.environ)
    executable = output(start_dbt("executable", args, project, f"exe-{command}"))
    assert executable[0] == code
    for how in ("fork", "python"):
        assert output(start_dbt(how, args, project, f"{how}-{command}")) == executable, how
    assert (os.getcwd(), dict(os.environ)) == (cwd, environment)


def test_a_fork_stops_on_an_interrupt(published_mesh):
    process = start_dbt("fork", ["build"], DbtProjectRef("orders", "orders"), "interrupted")
    process.send_signal(signal.SIGINT)  # at once: the fork holds it until dbt's handler is in place
    code, _ = output(process)
    assert code != 0


def test_a_fork_dies_with_the_process_that_forked_it(published_mesh):
    """Else a `mesh` process killed during its dbt step leaves dbt holding the domain's DuckDB
    file: here in a query of minutes, during which dbt writes nothing that would fail it."""
    (published_mesh / "dbt_projects" / "orders" / "models" / "slow.sql").write_text(
        "SELECT sum(a.range * b.range) AS n FROM range(1000000) AS a, range(1000000) AS b"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from platform_lib.dbt_project import DbtProjectRef; from tests.dbt.test_dbt_fork import start_dbt; "
         "fork = start_dbt('fork', ['run', '--select', 'slow'], DbtProjectRef('orders', 'orders'), 'orphan'); "
         "print(fork.pid, flush=True); time.sleep(600)"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )
    fork = int(parent.stdout.readline())
    time.sleep(8)  # dbt has started, parsed and sent the query
    assert running(fork)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while running(fork) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(fork)


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_dbt_step_where_the_platform_cannot_fork_publishes_the_same(published_mesh, monkeypatch):
    """There dbt and the checks of its product models run in a Python process of their own."""
    forked = output_port.current("orders.order_lines")
    monkeypatch.setattr(dbt_fork, "FORK", False)
    outcome = run("orders")["orders.order_lines"]
    assert outcome.status == "published" and outcome.ok
    assert output_port.current("orders.order_lines").version != forked.version
    assert output_port.digest(output_port.current("orders.order_lines").path) == output_port.digest(forked.path)
