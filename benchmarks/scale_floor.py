"""The floor of the scale benchmark: the products' own SQL in one DuckDB connection.

Typed readers, the products' SQL (dbt models' SQL with sources resolved, the pandas
function), the published Parquet files; no checks, no quarantine, no Dagster, every
table in memory (the mesh's candidates are temporary tables too, but dbt writes its
models to the domain's file). It runs
in a process of its own, as `mesh materialize` does, so neither starts with memory
the other left warm; it is timed from connecting to DuckDB, pandas imported already, so
Python's start and imports count against the mesh only.

    python benchmarks/scale_floor.py DATA_DIR < products.pickle   (prints a JSON result)
"""

from __future__ import annotations

import json
import pickle
import re
import sys
import time
from pathlib import Path

import duckdb

from platform_lib import output_port, storage
from platform_lib.contract import Product
from platform_lib.dbt_project import projects_dir, step_key
from platform_lib.factories import transform
from platform_lib.factories.serve import published_select
from platform_lib.factories.source_files import files_literal
from platform_lib.storage import FILES_ONLY, literal, quote


def in_dependency_order(products: list[Product]) -> list[Product]:
    done: set[str] = set()
    ordered: list[Product] = []
    while len(ordered) < len(products):
        for product in products:
            if product.id not in done and all(i in done for i in product.inputs):
                ordered.append(product)
                done.add(product.id)
    return ordered


def floor_read(product: Product, files: list[Path]) -> str:
    """DuckDB's own reader for the source, with the contract's types: the fastest honest ingest."""
    listed = f"{files_literal(files)}, {FILES_ONLY}"
    types = "{" + ", ".join(f"{literal(c.name)}: {literal(c.type)}" for c in product.columns) + "}"
    columns = ", ".join(f"CAST({quote(c.name)} AS {c.type}) AS {quote(c.name)}" for c in product.columns)
    if product.source.format == "csv":
        return f"SELECT * FROM read_csv({listed}, header = true, types = {types})"
    if product.source.format == "json":
        return f"SELECT * FROM read_json({listed}, format = 'newline_delimited', columns = {types})"
    return f"SELECT {columns} FROM read_parquet({listed}, union_by_name = true)"


def dbt_model_sql(product: Product) -> str:
    """The dbt model's SQL with `source('domain', 'product')` read as the product's table:
    what dbt sends to DuckDB, without dbt."""
    model = projects_dir() / product.dbt.project / "models" / f"{product.dbt_model}.sql"
    source = re.compile(r"\{\{\s*source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)\s*\}\}")
    return source.sub(lambda m: f"{quote(m[1])}.{quote(m[2])}", model.read_text(encoding="utf-8"))


def run_floor(products: list[Product], data: Path) -> tuple[float, dict[str, float], dict[str, str]]:
    """Every product in one connection; returns the wall time, the time per step key and the published fingerprints."""
    out = data / "floor"
    out.mkdir(parents=True)
    per_step: dict[str, float] = {}
    started = time.perf_counter()
    with duckdb.connect() as connection:
        for product in in_dependency_order(products):
            product_started = time.perf_counter()
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(product.domain)}")
            candidate = storage.candidate(product.name)
            if product.source:
                files = sorted((data / "sources").glob(product.source.path))
                storage.create_candidate(connection, product.name, floor_read(product, files))
            elif product.transform == "sql":
                transform.run_sql(connection, product)
            elif product.transform == "dbt":
                storage.create_candidate(connection, product.name, dbt_model_sql(product))
            else:
                transform.run_pandas(connection, product)
            connection.execute(f"CREATE VIEW {quote(product.domain)}.{quote(product.name)} AS SELECT * FROM {candidate}")
            target = out / f"{product.id}.parquet"
            connection.execute(f"COPY ({published_select(product, candidate)}) TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
            per_step[step_key(product)] = per_step.get(step_key(product), 0.0) + time.perf_counter() - product_started
    elapsed = time.perf_counter() - started
    return elapsed, per_step, {p.id: output_port.digest(out / f"{p.id}.parquet") for p in products}


if __name__ == "__main__":
    import pandas  # noqa: F401  (imported before the clock starts)

    elapsed, per_step, fingerprints = run_floor(pickle.load(sys.stdin.buffer), Path(sys.argv[1]))
    json.dump({"elapsed": elapsed, "per_step": per_step, "fingerprints": fingerprints}, sys.stdout)
