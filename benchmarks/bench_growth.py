"""Growth: does the cost of a domain stay flat as the mesh grows?

Generates synthetic meshes of 10, 50 and 100 domains with 20 products each (one CSV
ingest, nineteen SQL transforms with quality rules; every fifth transform also reads
the previous domain's public product) and measures, each in fresh processes:

- a bare `import dagster`, the floor every code location pays;
- one domain's code location: import plus building its definitions and the repository
  snapshot Dagster serves to the webserver (time and peak memory), for a few domains;
- the whole workspace, as `dagster definitions validate -w` loads it: one gRPC server
  process per location, started one after the other and all alive at the end, then the
  asset graph across them. Its CPU includes the servers' (the instance is told to wait
  for them, else they exit unwaited and their CPU is lost), and its peak memory is the
  sum over the process tree, as RSS and as PSS (shared pages counted once). The load is
  refused when the measured per-location peak times the domains would leave less than
  MIN_AVAILABLE_MB available, and killed if available memory drops under it: then the
  figures say "skipped" or "aborted", never an estimate;
- `mesh validate` over the whole mesh, when the command exists.

Times are CPU seconds (user + system), which other work on a shared machine does not
inflate; wall seconds are shown beside them, and the load average, to judge a run. A bare
import of great_expectations is measured too: what a location would add if one of its
rules fell outside the compiled catalog (platform_lib/quality/catalog.py).

Ends with one line: `BENCH growth ...`. Options: --sizes 10,50,100 --samples 3.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# The machine is shared: the workspace load never takes available memory below this.
MIN_AVAILABLE_MB = 3072
PRODUCTS_PER_DOMAIN = 20
RULES = [
    {"expect": "expect_column_values_to_be_between", "column": "amount", "min_value": 0},
    {"expect": "expect_column_values_to_be_in_set", "column": "kind", "value_set": ["a", "b", "c"]},
]
COLUMNS = [
    {"name": "id", "type": "BIGINT", "required": True},
    {"name": "kind", "type": "VARCHAR", "required": True},
    {"name": "amount", "type": "DECIMAL(12,2)"},
    {"name": "at", "type": "TIMESTAMP"},
    {"name": "note", "type": "VARCHAR"},
]


def write_domain(root: Path, index: int) -> None:
    name = f"d{index:03d}"
    products = root / name / "products"
    products.mkdir(parents=True)
    (root / name / "domain.yaml").write_text(yaml.safe_dump({"name": name, "owner": f"team-{name}", "description": "synthetic"}))
    (root / name / "definitions.py").write_text("from platform_lib.domain import domain_definitions\n\ndefs = domain_definitions(__file__)\n")
    base = {"owner": f"team-{name}", "columns": COLUMNS, "primary_key": ["id"], "retention": {"snapshots": 5}}
    ingest = {**base, "description": "raw events", "source": {"format": "csv", "path": f"{name}/*.csv"}}
    (products / "p00.yaml").write_text(yaml.safe_dump(ingest, sort_keys=False))
    for n in range(1, PRODUCTS_PER_DOMAIN):
        inputs = [f"{name}.p{n - 1:02d}"]
        if n % 5 == 0 and index > 0:
            inputs.append(f"d{index - 1:03d}.p{PRODUCTS_PER_DOMAIN - 1:02d}")
        contract = {
            **base,
            "description": f"step {n}",
            "access": "public" if n == PRODUCTS_PER_DOMAIN - 1 else "internal",
            "transform": "sql",
            "inputs": inputs,
            "freshness": {"fail_after": "26h"},
            "schedule": "0 * * * *" if n % 7 == 0 else None,
            "quality": RULES,
        }
        (products / f"p{n:02d}.yaml").write_text(yaml.safe_dump({k: v for k, v in contract.items() if v is not None}, sort_keys=False))
        (products / f"p{n:02d}.sql").write_text(f"SELECT * FROM {inputs[0]}\n")


def write_mesh(root: Path, domains: int) -> Path:
    for index in range(domains):
        write_domain(root / "domains", index)
    entries = [
        {"python_file": {"relative_path": f"domains/d{i:03d}/definitions.py", "location_name": f"d{i:03d}", "working_directory": "."}}
        for i in range(domains)
    ]
    (root / "workspace.yaml").write_text(yaml.safe_dump({"load_from": entries}))
    return root


def measure_location(folder: str) -> None:
    """Child process: CPU and wall time of `import dagster`, then of the location's definitions and snapshot."""
    start, wall = time.process_time(), time.perf_counter()
    import dagster  # noqa: F401

    imported = time.process_time()
    from dagster._core.remote_representation.external_data import RepositorySnap

    from platform_lib.domain import domain_definitions

    RepositorySnap.from_def(domain_definitions(folder).get_repository_def())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"dagster_s": imported - start, "total_s": time.process_time() - start, "wall_s": time.perf_counter() - wall}
    print(json.dumps({**figures, "peak_mb": peak_mb}))


def child(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a process to its end; return its CPU seconds (with the children it waited for) and wall seconds."""
    before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - wall, result


def bare_import_seconds(module: str, env: dict[str, str]) -> float:
    """CPU seconds to import `module` in a fresh interpreter, beyond starting the interpreter."""
    empty, _, _ = child([sys.executable, "-c", "pass"], env, REPO)
    seconds, _, result = child([sys.executable, "-c", f"import {module}"], env, REPO)
    assert result.returncode == 0, result.stderr
    return seconds - empty


def available_mb() -> float:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return int(meminfo["MemAvailable"].split()[0]) / 1024


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def tree_memory_mb(pids: list[int]) -> tuple[float, float]:
    """Summed RSS and PSS of the processes; PSS splits each shared page among its sharers."""
    rss = pss = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in rollup.splitlines()[1:])
        rss += int(fields["Rss"].split()[0])
        pss += int(fields["Pss"].split()[0])
    return rss / 1024, pss / 1024


def load_workspace(root: Path, env: dict[str, str]) -> dict[str, float | int | str]:
    """`dagster definitions validate -w` over the mesh, watching the memory of its process tree."""
    home = root / "dagster_home"
    home.mkdir()
    # Without this the code servers outlive `validate` unwaited, and their CPU never reaches RUSAGE_CHILDREN.
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"code_servers": {"wait_for_local_processes_on_shutdown": True}, "telemetry": {"enabled": False}})
    )
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"]
    before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    process = subprocess.Popen(
        command, env={**env, "DAGSTER_HOME": str(home)}, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    peak_rss = peak_pss = 0.0
    lowest_available = available_mb()
    aborted = False
    while process.poll() is None:
        tree = process_tree(process.pid)
        rss, pss = tree_memory_mb(tree)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        lowest_available = min(lowest_available, available_mb())
        if lowest_available < MIN_AVAILABLE_MB:
            aborted = True
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.5)
    process.wait()
    reader.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if aborted:
        print(f"workspace load aborted: available memory fell to {lowest_available:.0f} MB", file=sys.stderr)
        return {"workspace_s": "aborted", "workspace_wall_s": "aborted"}
    if process.returncode:
        sys.exit(f"workspace in {root} does not load:\n{''.join(stderr)[-3000:]}")
    return {
        "workspace_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "workspace_wall_s": time.perf_counter() - wall,
        "workspace_peak_rss_mb": round(peak_rss),
        "workspace_peak_pss_mb": round(peak_pss),
        "workspace_min_available_mb": round(lowest_available),
    }


def has_validate(env: dict[str, str]) -> bool:
    return child([sys.executable, "-m", "platform_lib.cli", "validate", "--help"], env, REPO)[2].returncode == 0


def measure_size(domains: int, samples: int, env: dict[str, str]) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix=f"mesh-growth-{domains}-") as tmp:
        root = write_mesh(Path(tmp), domains)
        env = {**env, "MESH_DOMAINS_DIR": str(root / "domains"), "MESH_DATA_DIR": str(root / "data")}
        picks = sorted({0, domains // 2, domains - 1})[:samples]
        loads = []
        for index in picks:
            folder = root / "domains" / f"d{index:03d}"
            _, _, result = child([sys.executable, __file__, "--measure-location", str(folder)], env, REPO)
            if result.returncode:
                sys.exit(f"loading {folder} failed:\n{result.stderr[-3000:]}")
            loads.append(json.loads(result.stdout.strip().splitlines()[-1]))
        peak_mb = max(x["peak_mb"] for x in loads)
        workspace: dict[str, float | int | str] = {"workspace_s": "skipped", "workspace_wall_s": "skipped"}
        if domains * peak_mb + MIN_AVAILABLE_MB < available_mb():
            workspace = load_workspace(root, env)
            if isinstance(workspace["workspace_s"], float):
                # Whole-workspace CPU per product, each location's own dagster import included.
                workspace["workspace_ms_per_product"] = 1000 * workspace["workspace_s"] / (domains * PRODUCTS_PER_DOMAIN)
        validate = "na"
        if has_validate(env):
            validate_s, _, _ = child([sys.executable, "-m", "platform_lib.cli", "validate"], env, REPO)
            validate = round(validate_s, 2)
    location_s = statistics.median(x["total_s"] for x in loads)
    beyond_s = statistics.median(x["total_s"] - x["dagster_s"] for x in loads)
    return {
        "location_s": location_s,
        "location_wall_s": statistics.median(x["wall_s"] for x in loads),
        "beyond_dagster_s": beyond_s,
        "location_peak_mb": peak_mb,
        "ms_per_product": 1000 * beyond_s / PRODUCTS_PER_DOMAIN,
        **workspace,
        "validate_s": validate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--measure-location")
    args = parser.parse_args()
    if args.measure_location:
        return measure_location(args.measure_location)

    env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": ""}
    env.pop("DAGSTER_HOME")
    floor = bare_import_seconds("dagster", env)
    figures = {"loadavg": os.getloadavg()[0], "dagster_import_s": floor, "ge_import_s": bare_import_seconds("great_expectations", env)}
    for size in [int(s) for s in args.sizes.split(",")]:
        result = measure_size(size, args.samples, env)
        print(f"{size} domains: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
        figures.update({f"{k}_{size}": v for k, v in result.items()})
    largest = max(int(s) for s in args.sizes.split(","))
    figures["location_vs_dagster"] = figures[f"location_s_{largest}"] / floor
    figures["beyond_dagster_s"] = figures[f"beyond_dagster_s_{largest}"]
    print("BENCH growth " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
