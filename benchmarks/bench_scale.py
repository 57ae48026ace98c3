"""Scale: the sample mesh at 10 million order lines, built three ways on the same sources.

    floor        the products' own SQL in one DuckDB connection, in a process of its own
                 (scale_floor.py): no checks, no quarantine, no Dagster
    in-process   `mesh materialize` (write-audit-publish per product, one Dagster run)
    distributed  `mesh materialize` with MESH_EXECUTOR=celery: two Celery workers on
                 RabbitMQ, the instance on PostgreSQL (needs both running locally)

All three must publish the same rows. The floor and in-process take turns, twice, and
the faster of each counts: runs on a shared machine vary by 10 to 20 percent. Then one
more in-process run under cProfile says where the in-process time goes, and the floor
and in-process take turns again at twice the scale. MESH_BENCH_SCALE sets the scale:
500 is 10M order lines (two per order on average); MESH_BENCH_REPEATS the turns (the
tests take one: they check the benchmark runs, not its figures).
"""

from __future__ import annotations

import cProfile
import json
import os
import pickle
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from platform_lib import localstack, output_port, sample_data
from platform_lib.contract import Product
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT

SCALE = float(os.environ.get("MESH_BENCH_SCALE", "500"))
ROUNDS = int(os.environ.get("MESH_BENCH_REPEATS", "2"))  # the floor and in-process take turns; the faster of each counts
PHASES = {  # where a product step spends its time: (module, function) in platform_lib
    "ingest": ("factories/ingest.py", "ingest"),
    "transform_sql": ("factories/transform.py", "run_sql"),
    "transform_pandas": ("factories/transform.py", "run_pandas"),
    "dbt_process": ("factories/dbt.py", "_run_dbt"),  # dbt build, and its product models checked and published
    "checks": ("factories/quality.py", "run_checks"),
    "  schema": ("factories/quality.py", "schema_problems"),
    "  primary_key": ("factories/quality.py", "primary_key_problems"),
    "  rules": ("quality/engine.py", "evaluate_rules"),
    "publish": ("factories/serve.py", "publish"),
}
STEPS = [("factories/product.py", "materialize"), ("factories/dbt.py", "build")]  # a product step, a dbt project step


def run_floor_process(products: list[Product], data: Path) -> tuple[float, dict[str, float], dict[str, str]]:
    """The floor in a fresh process (scale_floor.py): wall time, time per step key, published fingerprints."""
    floor = subprocess.run([sys.executable, str(Path(__file__).with_name("scale_floor.py")), str(data)],
                           input=pickle.dumps(products), capture_output=True, cwd=REPO_ROOT, check=False)
    if floor.returncode != 0:
        raise SystemExit(f"the floor failed:\n{floor.stderr.decode()}")
    result = json.loads(floor.stdout)
    return result["elapsed"], result["per_step"], result["fingerprints"]


@dataclass
class Turns:
    """The faster of ROUNDS floor runs and of ROUNDS in-process runs, taking turns on the same sources."""

    floor_s: float
    floor_steps: dict[str, float]
    floor_out: dict[str, str]
    in_process_s: float
    in_process_steps: dict[str, tuple[float, float]]
    same_output: bool

    @property
    def order_lines(self) -> int:
        return int(self.floor_out["orders.order_lines"].split(":")[0])


def take_turns(products: list[Product], root: Path, name: str, sources: Path, base_env: dict[str, str]) -> Turns:
    floors, in_processes = [], []
    for turn in range(ROUNDS):
        floors.append(run_floor_process(products, data_dir(root, f"{name}_floor{turn}", sources)))
        in_processes.append(run_in_process(products, root, f"{name}_in_process{turn}", sources, base_env))
        print(f"{name}, turn {turn + 1}: floor {floors[-1][0]:.1f}s, in-process {in_processes[-1][0]:.1f}s", flush=True)
    floor_s, floor_steps, floor_out = min(floors, key=lambda run: run[0])
    in_process_s, in_process_steps, _ = min(in_processes, key=lambda run: run[0])
    same = all(out == floor_out for _, _, out in (*floors, *in_processes))
    return Turns(floor_s, floor_steps, floor_out, in_process_s, in_process_steps, same)


def data_dir(root: Path, name: str, sources: Path) -> Path:
    """A mesh data folder whose sources are hard links to the shared ones (no copy of gigabytes)."""
    data = root / name
    shutil.copytree(sources, data / "sources", copy_function=os.link)
    return data


def published(products: list[Product], data: Path) -> dict[str, str]:
    os.environ["MESH_DATA_DIR"] = str(data)
    return {p.id: output_port.digest(s.path) if (s := output_port.current(p.id)) else "missing" for p in products}


def run_cli(env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "platform_lib.cli", "materialize", *sample_data.DOMAINS], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"mesh materialize failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def step_durations(instance: dg.DagsterInstance) -> tuple[str, dict[str, tuple[float, float]]]:
    [run] = instance.get_runs(limit=1)
    return run.run_id, {s.step_key: (s.start_time, s.end_time) for s in instance.get_run_step_stats(run.run_id)}


def run_in_process(
    products: list[Product], root: Path, name: str, sources: Path, base_env: dict[str, str]
) -> tuple[float, dict[str, tuple[float, float]], dict[str, str]]:
    """`mesh materialize` on a fresh data folder and SQLite instance: wall time, step times, published fingerprints."""
    home = root / f"{name}_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    data = data_dir(root, name, sources)
    elapsed = run_cli({**base_env, "MESH_DATA_DIR": str(data), "DAGSTER_HOME": str(home)})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _, steps = step_durations(instance)
    return elapsed, steps, published(products, data)


def celery_submissions(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """When the orchestrator handed each step to the broker."""
    return {
        e.step_key: e.timestamp
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if e.step_key and e.user_message.startswith("Submitting celery task")
    }


def profile_in_process(products: list[Product], data: Path) -> tuple[float, dict[str, float]]:
    os.environ["MESH_DATA_DIR"] = str(data)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    outcomes = materialize_products(products, instance=dg.DagsterInstance.ephemeral())
    profiler.disable()
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    cumulative = {(file, name): stats[3] for (file, _, name), stats in pstats.Stats(profiler).stats.items()}

    def seconds(module: str, function: str) -> float:
        return sum(t for (file, name), t in cumulative.items() if file.endswith(module) and name == function)

    phases = {phase: seconds(*where) for phase, where in PHASES.items()}
    phases["steps"] = sum(seconds(*where) for where in STEPS)
    return elapsed, phases


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mesh-bench-scale-"))
    processes = localstack.Processes(root / "logs")
    # The runs' own instance and data folders; the salt stays, as the floor (this environment's) hashes with it,
    # and so do the domains this process loads (the tests' sample ones, whatever a fork added to domains/).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MESH_")) or k in ("MESH_PII_SALT", "MESH_DOMAINS_DIR")}
    base_env["PYTHONPATH"] = str(REPO_ROOT)
    try:
        started = time.perf_counter()
        sources = sample_data.generate(SCALE, root / "sources")
        generate_s = time.perf_counter() - started
        products = [p for d in load_mesh() if d.path.name in sample_data.DOMAINS for p in d.products]  # not a fork's own
        print(f"scale {SCALE:g}: sources generated in {generate_s:.1f}s", flush=True)
        base = take_turns(products, root, f"scale {SCALE:g}", sources, base_env)

        with localstack.postgres_database("mesh_bench") as database:
            instance_env = localstack.instance_env(root / "prod_home", database)
            queue = f"mesh-bench-{uuid.uuid4().hex[:8]}"
            distributed = data_dir(root, "distributed", sources)
            env = {**base_env, **instance_env, **localstack.celery_env(queue), "MESH_DATA_DIR": str(distributed)}
            processes.start_celery_workers(["w1", "w2"], queue, env)
            distributed_s = run_cli(env)
            print(f"distributed {distributed_s:.1f}s", flush=True)
            os.environ.update(instance_env)
            with dg.DagsterInstance.get() as instance:
                run_id, remote_steps = step_durations(instance)
                submitted = celery_submissions(instance, run_id)
        processes.stop_all()
        same_distributed = published(products, distributed) == base.floor_out
        profiled_s, phases = profile_in_process(products, data_dir(root, "profiled", sources))

        larger = sample_data.generate(2 * SCALE, root / "sources_2x")
        double = take_turns(products, root, f"scale {2 * SCALE:g}", larger, base_env)
    finally:
        processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)

    steps = len(remote_steps)
    queue_wait = [remote_steps[k][0] - submitted[k] for k in remote_steps]
    slower = [(remote_steps[k][1] - remote_steps[k][0]) - (base.in_process_steps[k][1] - base.in_process_steps[k][0]) for k in remote_steps]
    print(f"\n{'step':<42} {'floor s':>8} {'in-process s':>12} {'distributed s':>13} {'queue wait s':>12}")
    for key in sorted(remote_steps, key=lambda k: remote_steps[k][0]):
        local_d = base.in_process_steps[key][1] - base.in_process_steps[key][0]
        remote_d = remote_steps[key][1] - remote_steps[key][0]
        print(f"{key:<42} {base.floor_steps[key]:>8.2f} {local_d:>12.2f} {remote_d:>13.2f} {remote_steps[key][0] - submitted[key]:>12.2f}")
    other = profiled_s - phases["steps"]
    print(f"\nwhere the in-process time goes (cProfile, run of {profiled_s:.1f}s):")
    top = [p for p in PHASES if not p.startswith(" ")]
    for phase in PHASES:
        print(f"  {phase:<17} {phases[phase]:7.1f}s")
    print(f"  {'rest of steps':<17} {phases['steps'] - sum(phases[p] for p in top):7.1f}s  (attach inputs, counts, metadata)")
    print(f"  {'dagster, outside':<17} {other:7.1f}s  (run setup, event handling, between steps)")
    outside = base.in_process_s - sum(end - start for start, end in base.in_process_steps.values())
    print(f"\nin-process, outside its steps (Python, imports, the instance, the run's start and end): {outside:.1f}s")
    figures = {
        "order_lines": base.order_lines,
        "floor_s": round(base.floor_s, 1),
        "in_process_s": round(base.in_process_s, 1),
        "distributed_s": round(distributed_s, 1),
        "in_process_outside_steps_s": round(outside, 1),
        "in_process_vs_floor": round(base.in_process_s / base.floor_s, 2),
        "distributed_vs_floor": round(distributed_s / base.floor_s, 2),
        "distributed_overhead_per_step_s": round((distributed_s - base.in_process_s) / steps, 2),
        "queue_wait_per_step_s": round(sum(queue_wait) / steps, 2),
        "step_slowdown_per_step_s": round(sum(slower) / steps, 2),
        "profiled_in_process_s": round(profiled_s, 1),
        "checks_s": round(phases["checks"], 1),
        "ingest_s": round(phases["ingest"], 1),
        "dbt_process_s": round(phases["dbt_process"], 1),
        "order_lines_2x": double.order_lines,
        "floor_2x_s": round(double.floor_s, 1),
        "in_process_2x_s": round(double.in_process_s, 1),
        "in_process_vs_floor_2x": round(double.in_process_s / double.floor_s, 2),
        "largest_process_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
        "same_output": str(base.same_output and same_distributed and double.same_output).lower(),
    }
    print("BENCH scale " + " ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
