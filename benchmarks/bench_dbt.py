"""Code-location load time with a dbt project of 100 and 500 models, against the same domain without dbt.

Each load runs in a fresh Python process, as a code location server would, after the
manifest has been prepared (`mesh prepare-dbt`), and builds the domain's Definitions
and asset graph. The generated models form a tree over one source; each has a YAML
entry with typed columns and a not_null test, so the manifest carries checks too.

    BENCH dbt no_dbt_load_s=... models100_load_s=... models500_load_s=... ratio100=... ratio500=... parse500_s=...

MESH_BENCH_DBT_MODELS sets the project sizes (default `100,500`; the tests run it small),
MESH_BENCH_REPEATS the loads of each domain (default 3; the tests load once).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("MESH_BENCH_REPEATS", "3"))  # loads of each domain; the median counts
SIZES = [int(n) for n in os.environ.get("MESH_BENCH_DBT_MODELS", "100,500").split(",")]
COLUMNS = [{"name": "order_id", "data_type": "bigint"}, {"name": "amount", "data_type": "decimal(12,2)"}]
PRODUCT = {  # a public product as the global policies want it (platform_lib/governance)
    "description": "The first model of a generated dbt project.",
    "access": "public",
    "freshness": {"fail_after": "24h"},
    "retention": {"snapshots": 3},
    "primary_key": ["order_id"],
    "columns": [{"name": "order_id", "type": "BIGINT", "required": True}, {"name": "amount", "type": "DECIMAL(12,2)"}],
    "quality": [{"expect": "expect_column_values_to_be_between", "column": "amount", "min_value": 0}],
}
LOAD = """
import sys, time
start = time.perf_counter()
from platform_lib.domain import domain_definitions
domain_definitions(sys.argv[1]).resolve_asset_graph()
print(time.perf_counter() - start)
"""


def write_dbt_project(folder: Path, models: int) -> None:
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text(yaml.safe_dump({"name": folder.name, "version": "1.0.0", "profile": "bench"}))
    sources = [{"name": "orders", "tables": [{"name": "order_lines"}]}]
    entries = []
    for i in range(1, models + 1):
        parent = "{{ source('orders', 'order_lines') }}" if i == 1 else f"{{{{ ref('m_{i // 2:04d}') }}}}"
        (folder / "models" / f"m_{i:04d}.sql").write_text(f"select order_id, amount from {parent}\n")
        entry = {"name": f"m_{i:04d}", "columns": [{**c, "data_tests": ["not_null"]} if c["name"] == "order_id" else c for c in COLUMNS]}
        if i == 1:
            entry.update(access="public", config={"contract": {"enforced": True}})
        entries.append(entry)
    (folder / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "sources": sources, "models": entries}))


def write_domain(folder: Path, transform: dict) -> None:
    (folder / "products").mkdir(parents=True)
    (folder / "domain.yaml").write_text(yaml.safe_dump({"name": folder.name, "owner": "team-bench"}))
    product = {**PRODUCT, **transform}
    (folder / "products" / "m_0001.yaml").write_text(yaml.safe_dump(product))
    if transform["transform"] == "sql":
        (folder / "products" / "m_0001.sql").write_text("SELECT order_id, amount FROM orders.order_lines\n")


def load_seconds(domain: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        done = subprocess.run([sys.executable, "-c", LOAD, str(domain)], env=env, capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "MESH_DATA_DIR": str(root / "mesh"),
            "MESH_DBT_PROJECTS_DIR": str(root / "dbt_projects"),
        }
        os.environ.update(env)
        sys.path.insert(0, str(REPO_ROOT))
        from platform_lib.dbt_project import DbtProjectRef, dbt_product_models, prepare

        write_domain(root / "domains" / "plain", {"transform": "sql", "inputs": ["orders.order_lines"]})
        figures = {"no_dbt_load_s": load_seconds(root / "domains" / "plain", env)}
        for models in SIZES:
            name = f"bench{models}"
            write_dbt_project(root / "dbt_projects" / name, models)
            write_domain(root / "domains" / name, {"transform": "dbt", "dbt": {"project": name}})
            start = time.perf_counter()
            prepare(DbtProjectRef(name, name, dbt_product_models(root / "domains" / name)[name]))
            figures[f"parse{models}_s"] = time.perf_counter() - start
            figures[f"models{models}_load_s"] = load_seconds(root / "domains" / name, env)
            figures[f"ratio{models}"] = figures[f"models{models}_load_s"] / figures["no_dbt_load_s"]
    order = ["no_dbt_load_s", *(f"{kind}{n}{unit}" for kind, unit in (("models", "_load_s"), ("ratio", ""), ("parse", "_s")) for n in SIZES)]
    print("BENCH dbt " + " ".join(f"{key}={figures[key]:.2f}" for key in order))


if __name__ == "__main__":
    main()
