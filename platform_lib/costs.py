"""`mesh costs`: what each domain and product spends, so domains see the bill for what they run.

Compute is the wall-clock time of the product's steps in the Dagster instance's run
records (failed ones too: they cost the same), of every run or of those since a date; a
step that builds several products (a dbt project) is split evenly between them. Rows
written add up the row counts of its materializations; storage is the bytes of its
output port (every retained snapshot) and, per domain, of the domain's DuckDB file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from platform_lib.columns import aligned
from platform_lib.contract import Product
from platform_lib.dbt_project import step_key
from platform_lib.output_port import port_dir
from platform_lib.storage import warehouse_path


@dataclass
class Cost:
    domain: str
    product: str
    steps: int = 0
    compute_seconds: float = 0.0
    rows_written: int = 0
    storage_bytes: int = 0


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def product_costs(products: list[Product], instance: dg.DagsterInstance, since: datetime | None = None) -> list[Cost]:
    """One Cost per product, plus one `<domain DuckDB file>` row per domain for its warehouse.
    Compute and rows count the runs created at or after `since` (every run without it): a
    bill is for a period, and an instance in production holds years of runs. Storage is now's."""
    costs = {p.id: Cost(p.domain, p.id, storage_bytes=_folder_bytes(port_dir(p.id))) for p in products}
    by_step: dict[str, list[str]] = defaultdict(list)  # a dbt project's step builds all its products
    for p in products:
        by_step[step_key(p)].append(p.id)
    for record in instance.get_run_records(filters=_created_since(since)):
        for stats in instance.get_run_step_stats(record.dagster_run.run_id):
            rows = {}
            for event in stats.materialization_events:
                materialization = event.asset_materialization
                product_id = ".".join(materialization.asset_key.path)
                count = materialization.metadata.get("dagster/row_count")
                if product_id in costs:
                    rows[product_id] = int(count.value) if count else 0
            # A step that failed before materializing still cost time: charge it to its own product.
            charged = list(rows) or by_step.get(stats.step_key, [])
            seconds = stats.end_time - stats.start_time if stats.start_time and stats.end_time else 0.0
            for product_id in charged:
                cost = costs[product_id]
                cost.steps += 1
                cost.compute_seconds += seconds / len(charged)
                cost.rows_written += rows.get(product_id, 0)
    domains = sorted({p.domain for p in products})
    files = [Cost(d, f"<{warehouse_path(d).name}>", storage_bytes=_warehouse_bytes(d)) for d in domains]
    return sorted([*costs.values(), *files], key=lambda c: (c.domain, c.product.startswith("<"), c.product))


def _created_since(since: datetime | None) -> dg.RunsFilter | None:
    """Dagster's filter takes runs created strictly after a time, read as UTC whatever its zone."""
    return dg.RunsFilter(created_after=since.astimezone(timezone.utc) - timedelta(microseconds=1)) if since else None


def _warehouse_bytes(domain: str) -> int:
    """The domain's DuckDB file and its write-ahead log."""
    path = warehouse_path(domain)
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())


def render(costs: list[Cost]) -> list[str]:
    """The costs as a table, each domain's total below."""
    totals: dict[str, Cost] = {}
    for cost in costs:
        total = totals.setdefault(cost.domain, Cost(cost.domain, "TOTAL"))
        total.steps += cost.steps
        total.compute_seconds += cost.compute_seconds
        total.rows_written += cost.rows_written
        total.storage_bytes += cost.storage_bytes

    def row(c: Cost) -> list[str]:
        return [c.domain, c.product, str(c.steps), f"{c.compute_seconds:.2f}", f"{c.rows_written:,}", f"{c.storage_bytes:,}"]

    header = ["domain", "product", "steps", "compute s", "rows written", "storage bytes"]
    rows = [header, *map(row, costs), [""] * len(header), *(row(totals[d]) for d in sorted(totals))]
    return aligned(rows, right=(2, 3, 4, 5))
