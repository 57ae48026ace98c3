"""SIGKILL a real materializing process at each stage of a product's build.

Afterwards every pointer names a complete snapshot, the domain's DuckDB file opens
for writing at once (no stray lock), and the next run publishes and cleans up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import warehouse_path

from .pause_at import MOMENTS
from .ports import assert_history_readable, leftovers, served
from .processes import mesh_env

PAUSE_AT = Path(__file__).with_name("pause_at.py")
DOMAIN = "customers"
WAL = "duckdb_wal_appears"  # no instrumentation: kill as soon as DuckDB starts writing


def start(moment: str, marker: Path) -> subprocess.Popen:
    if moment == WAL:
        command = [sys.executable, "-m", "platform_lib.cli", "materialize", DOMAIN]
    else:
        command = [sys.executable, str(PAUSE_AT), moment, str(marker), DOMAIN]
    return subprocess.Popen(command, env=mesh_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def kill_when(marker: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before reaching {marker.name}:\n{process.stdout.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, f"{marker} never appeared"
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


@pytest.mark.parametrize("moment", [*MOMENTS, WAL])
def test_sigkill_leaves_valid_pointers_and_next_run_succeeds(moment, published_mesh, tmp_path):
    before = served()
    marker = Path(f"{warehouse_path(DOMAIN)}.wal") if moment == WAL else tmp_path / "reached"
    process = start(moment, marker)
    kill_when(marker, process)
    assert process.returncode == -signal.SIGKILL

    after = served()  # every pointer parses and names a complete, readable snapshot
    assert after.keys() == before.keys()
    assert_history_readable()
    duckdb.connect(str(warehouse_path(DOMAIN))).close()  # raises at once if a lock were left behind

    [customers] = [d for d in load_mesh() if d.path.name == DOMAIN]
    outcomes = materialize_products(list(customers.products))
    assert all(o.ok for o in outcomes), outcomes
    final = served()
    assert all(final[o.product] not in (before[o.product], after[o.product]) for o in outcomes)
    assert not leftovers()
