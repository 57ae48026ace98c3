"""Soak: rounds of materializations with random faults; the output ports stay trustworthy.

Each round runs a random set of domains: cleanly, with unreadable or duplicated rows
planted in a source, or in a process SIGKILLed at a random moment after DuckDB starts
writing. After every round each pointer names a complete snapshot. At the end, after
a clean run of the whole mesh, every snapshot on disk is readable and each product
holds the versions it served most recently, up to its retention, and no more: the
contracts' grace is 0s here, so every publish prunes.

MESH_SOAK_ROUNDS (default 30) and MESH_SOAK_SEED set the length and the dice; the
seed is printed so a failing soak can be replayed. `make soak` runs a long one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from platform_lib import output_port
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import warehouse_path

from tests.reliability.ports import assert_history_readable, leftovers, served
from tests.reliability.processes import mesh_env, mesh_process

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("MESH_SOAK_ROUNDS", "30"))
SEED = int(os.environ.get("MESH_SOAK_SEED") or random.randrange(1_000_000))
BAD_LINES = 50  # above every sample contract's max_bad_fraction
PLANTS = {  # source file -> what to append to it
    "customers/customers.csv": lambda lines, n: f"{n},too,many,fields,in,this,row,{n}",
    "orders/order_lines_1.jsonl": lambda lines, n: f"{{not json {n}",
    "customers/customers.csv ": lambda lines, n: lines[1],  # a duplicated key
}


def plant_bad_rows(sources: Path, rng: random.Random) -> str:
    target = rng.choice(sorted(PLANTS))
    path = sources / target.strip()
    lines = path.read_text(encoding="utf-8").splitlines()
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(PLANTS[target](lines, 80_000 + n) + "\n" for n in range(BAD_LINES))
    return target.strip()


def run_and_kill(domains: list[str], home: Path, rng: random.Random) -> bool:
    """Run `mesh materialize DOMAINS` in a process; SIGKILL it at a random moment once it writes."""
    process = mesh_process("materialize", *domains, env=mesh_env(DAGSTER_HOME=str(home)))
    wals = [Path(f"{warehouse_path(d)}.wal") for d in domains]
    while process.poll() is None and not any(w.exists() for w in wals):
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 1.5))
    landed = process.poll() is None
    if landed:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    return landed


def test_soak(published_mesh, published_template, domains_copy, dagster_home, monkeypatch):
    print(f"soak: {ROUNDS} rounds, MESH_SOAK_SEED={SEED}")
    for contract in domains_copy.glob("*/products/*.yaml"):
        contract.write_text(re.sub(r"retention: \{snapshots: (\d+)\}", r"retention: {snapshots: \1, grace: 0s}", contract.read_text()))
    rng = random.Random(SEED)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    sources = published_mesh / "sources"
    domains = sorted(d.path.name for d in load_mesh())
    history = {product: [version] for product, version in served().items()}
    kills = bad = 0

    for _ in range(ROUNDS):
        chosen = sorted(rng.sample(domains, rng.randint(1, len(domains))))
        fault = rng.choice(["clean", "bad_rows", "kill"])
        if fault == "kill":
            kills += run_and_kill(chosen, dagster_home, rng)
        else:
            if fault == "bad_rows":
                broken = plant_bad_rows(sources, rng)
                bad += 1
            materialize_products([p for d in load_mesh() if d.path.name in chosen for p in d.products])
            if fault == "bad_rows":
                shutil.copy(published_template / "sources" / broken, sources / broken)
        for product, version in served().items():  # every pointer names a complete snapshot
            if history[product][-1] != version:
                history[product].append(version)

    outcomes = materialize_products([p for d in load_mesh() for p in d.products])
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    assert_history_readable()
    assert not leftovers()
    retention = {p: c.retention.snapshots for p, c in products_by_id(load_mesh()).items()}
    for product, version in served().items():
        history[product].append(version)
        on_disk = output_port.versions(product)
        assert on_disk[-1] == version
        assert set(history[product][-retention[product]:]) <= set(on_disk), product
        assert len(on_disk) <= retention[product], product
    print(f"soak: {kills} kills landed mid-run, {bad} rounds with bad rows, seed {SEED}")
