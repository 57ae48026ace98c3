"""Runs that overlap, in separate processes sharing one Dagster instance: no lock errors, right results.

Two runs of one domain stand for a schedule tick meeting a manual run; one run per
domain at once is a busy morning. Results are right when every product ends up with
the same rows, by primary key, as the sequential build the test started from.
"""

from __future__ import annotations

import duckdb
import pytest

from platform_lib import output_port
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import literal, quote

from tests.reliability.ports import served
from tests.reliability.processes import mesh_env, mesh_process


def key_fingerprint(product, snapshot_file) -> tuple[int, int, int]:
    """(rows, distinct keys, hash of the key set): equal for the same rows by key."""
    keys = ", ".join(quote(k) for k in product.primary_key)
    with duckdb.connect() as connection:
        return connection.execute(
            f"SELECT count(*), count(DISTINCT ({keys})), bit_xor(hash({keys})) FROM read_parquet({literal(str(snapshot_file))})"
        ).fetchone()


@pytest.mark.parametrize("domains", [["customers", "customers"], ["customers", "orders", "marketing"]], ids="+".join)
def test_overlapping_runs_neither_fail_nor_corrupt(domains, published_mesh, dagster_home):
    products = products_by_id(load_mesh())
    expected = {p: key_fingerprint(products[p], output_port.current(p).path) for p in served()}
    env = mesh_env(DAGSTER_HOME=str(dagster_home))
    runs = [mesh_process("materialize", domain, env=env) for domain in domains]
    results = [(run.wait(timeout=600), run.stdout.read()) for run in runs]
    for run in runs:
        run.stdout.close()
    for code, output in results:
        assert code == 0, output[-3000:]
        assert "could not set lock" not in output.lower(), output[-3000:]  # DuckDB's lock error

    for product_id in served():
        assert key_fingerprint(products[product_id], output_port.current(product_id).path) == expected[product_id], product_id


def test_a_session_left_open_on_a_domains_file_fails_the_run_saying_so(published_mesh):
    """An analyst's DuckDB session, read-only or not, holds the file for as long as it stays open."""
    import subprocess
    import sys

    from platform_lib.storage import warehouse_path

    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(warehouse_path('customers'))!r}, read_only=True); "
         "print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "open\n"
        run = subprocess.run([sys.executable, "-m", "platform_lib.cli", "materialize", "customers.raw_customers"],
                             env=mesh_env(MESH_LOCK_WAIT_SECONDS="1"), capture_output=True, text=True, timeout=300)
    finally:
        holder.communicate("")
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"its DuckDB file {warehouse_path('customers')} is still held by another process after 1 s" in run.stdout
    assert "an unexpected error" not in run.stdout + run.stderr
