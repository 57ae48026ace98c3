"""SIGKILL a real materializing process at each stage of a product's build.

The runs share a Dagster instance with pools, as under `make dev`. Afterwards every
pointer names a complete snapshot, the domain's DuckDB file opens for writing at once,
`mesh status` shows the product whose build was killed failed, naming the dead run and
the version still served, and the next run is not held up by the killed one (DuckDB
lock or pool slot), publishes, and cleans up what the killed run left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from platform_lib import output_port
from platform_lib.mesh import load_mesh
from platform_lib.status import FAILED, status
from platform_lib.storage import warehouse_path

from tests.reliability.pause_at import MOMENTS
from tests.reliability.ports import assert_history_readable, leftovers, served
from tests.reliability.processes import mesh_env

PAUSE_AT = Path(__file__).with_name("pause_at.py")
DOMAIN = "customers"
WAL = "duckdb_wal_appears"  # no instrumentation: kill as soon as DuckDB starts writing
KILLED_BUILDING = {"after_transform": "customers.customer_profiles", "before_prune": None}
"""The product whose build each kill stops, if not the first one's (raw_customers): before_prune comes once it is published."""


def start(moment: str, marker: Path, home: Path) -> subprocess.Popen:
    if moment == WAL:
        command = [sys.executable, "-m", "platform_lib.cli", "materialize", DOMAIN]
    else:
        command = [sys.executable, str(PAUSE_AT), moment, str(marker), DOMAIN]
    env = mesh_env(DAGSTER_HOME=str(home))
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_reached(marker: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before reaching {marker.name}:\n{process.stdout.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, f"{marker} never appeared"
        time.sleep(0.002)


def kill_when(marker: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    wait_until_reached(marker, process, timeout)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


@pytest.mark.parametrize("moment", [*MOMENTS, WAL])
def test_sigkill_leaves_valid_pointers_and_next_run_succeeds(moment, published_mesh, dagster_home, tmp_path):
    before = served()
    marker = Path(f"{warehouse_path(DOMAIN)}.wal") if moment == WAL else tmp_path / "reached"
    process = start(moment, marker, dagster_home)
    kill_when(marker, process)
    assert process.returncode == -signal.SIGKILL

    after = served()  # every pointer parses and names a complete, readable snapshot
    assert after.keys() == before.keys()
    assert_history_readable()
    duckdb.connect(str(warehouse_path(DOMAIN))).close()  # raises at once if a lock were left behind

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [killed_run] = instance.get_runs()
    shown = {p.id: status(p) for d in load_mesh() for p in d.products if p.domain == DOMAIN}
    died = {product_id: s for product_id, s in shown.items() if s.state == FAILED}
    if killed := KILLED_BUILDING.get(moment, "customers.raw_customers"):
        assert list(died) == [killed] and died[killed].version == before[killed] == after[killed], shown
        assert died[killed].why.startswith(f"the latest run {killed_run.run_id} at "), died[killed].why
        assert died[killed].why.endswith(f"ended without an outcome (killed, interrupted, or out of memory) while it built {killed}; consumers read {before[killed]}")
    else:
        assert not died, died

    rerun = subprocess.run(
        [sys.executable, "-m", "platform_lib.cli", "materialize", DOMAIN],
        env=mesh_env(DAGSTER_HOME=str(dagster_home), MESH_LOCK_WAIT_SECONDS="30"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    final = served()
    rebuilt = [p for p in final if p.startswith(f"{DOMAIN}.")]
    assert rebuilt and all(final[p] not in (before[p], after[p]) for p in rebuilt)
    for product_id in rebuilt:  # the history is what consumers were served: nothing lost, no orphan kept
        assert set(output_port.versions(product_id)) == {before[product_id], after[product_id], final[product_id]}
        assert output_port.failed(product_id) is None, "the next run's outcome replaces the dead one's"
    assert not leftovers()


def test_a_run_stopped_by_ctrl_c_says_so_and_serves_what_it_served(published_mesh, dagster_home, tmp_path):
    """Ctrl-C while a product transforms: Dagster interrupts the step; the summary says the run
    was stopped (not an unexpected error with its stack), and consumers read what they read."""
    before = served()
    marker = tmp_path / "reached"
    process = start("after_transform", marker, dagster_home)
    wait_until_reached(marker, process)
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to its foreground process group
    out = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 1, out[-3000:]
    assert "\ncustomers.customer_profiles: the run was stopped (Ctrl-C or SIGTERM)\n" in out, out[-3000:]
    assert "its stack" not in out, out[-3000:]
    after = served()  # raw_customers was published before the stop
    assert after["customers.customer_profiles"] == before["customers.customer_profiles"]
    assert after["customers.raw_customers"] != before["customers.raw_customers"]
    stopped = status(next(p for d in load_mesh() for p in d.products if p.id == "customers.customer_profiles"))
    assert stopped.state == FAILED and "failed before its checks: the run was stopped (Ctrl-C or SIGTERM) while it built customers.customer_profiles; consumers read" in stopped.why, stopped.why
    duckdb.connect(str(warehouse_path(DOMAIN))).close()


def test_a_run_waiting_for_the_slot_of_a_run_then_killed_goes_on(published_mesh, dagster_home, tmp_path):
    """The domain's pool has one slot: the second run waits for it, and must not wait for
    good once the run holding it is killed."""
    marker = tmp_path / "reached"
    holding = start("after_ingest", marker, dagster_home)
    while not marker.exists():
        assert holding.poll() is None, holding.stdout.read().decode()[-3000:]
        time.sleep(0.01)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "platform_lib.cli", "materialize", "--quiet", DOMAIN],
        env=mesh_env(DAGSTER_HOME=str(dagster_home)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while len(instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))) < 2:
            assert waiting.poll() is None, waiting.stdout.read()[-3000:]
            time.sleep(0.1)
    os.killpg(holding.pid, signal.SIGKILL)
    holding.wait()
    holding.stdout.close()
    try:
        out, _ = waiting.communicate(timeout=120)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, out[-3000:]


def test_a_killed_run_stays_failed_while_the_next_run_builds_the_product(published_mesh, tmp_path):
    """The record of a build killed outright is the product's latest failure until a later run
    has an outcome, as a failed run's error is: the next attempt starting neither hides it
    (an alert would post `ok` again) nor shows an older failure in its place."""
    product_id = "customers.raw_customers"
    output_port.mark_failed(product_id, "an-older-run", "an older failure, fixed since")

    def paused(marker: Path) -> subprocess.Popen:
        command = [sys.executable, str(PAUSE_AT), "after_ingest", str(marker), product_id]
        return subprocess.Popen(command, env=mesh_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    kill_when(tmp_path / "first", paused(tmp_path / "first"))
    died = output_port.failed(product_id)
    assert died["run_id"] != "an-older-run" and "ended without an outcome (killed, interrupted, or out of memory)" in died["error"]

    second = paused(tmp_path / "second")
    try:
        while not (tmp_path / "second").exists():
            assert second.poll() is None, second.stdout.read().decode()[-3000:]
            time.sleep(0.01)
        [product] = [p for d in load_mesh() for p in d.products if p.id == product_id]
        shown = status(product)
        assert shown.state == FAILED and shown.why.startswith(f"the latest run {died['run_id']} at "), shown
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()
        second.stdout.close()
    assert output_port.failed(product_id)["run_id"] not in (died["run_id"], "an-older-run"), "now the second run is the latest"
