"""Append-only ingest: the run after a new day's file, against reading every file again.

A generated domain has one ingest product whose JSON source gets a file a day (default
60 days of 100,000 events). After a first publish, each turn adds a day's file and
times, in-process as `mesh materialize` runs them, the append-only run (the new file
added to the published version) and a full refresh of the same files; the fastest of
each counts. Both must publish the same rows. Ends with one line:

    BENCH append days=... lines_per_day=... rows=... append_s=... full_refresh_s=... full_refresh_vs_append=... same_output=...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TURNS = 2
PRODUCT = """description: Events of the shop's front end, a file a day.
source: {format: json, path: events/day_*.jsonl, append_only: true}
primary_key: [event_id]
columns:
  - {name: event_id, type: BIGINT, required: true}
  - {name: customer_id, type: BIGINT, required: true}
  - {name: kind, type: VARCHAR, required: true}
  - {name: amount, type: "DECIMAL(10,2)"}
  - {name: at, type: TIMESTAMP, required: true}
"""


def write_day(sources: Path, day: int, lines: int) -> None:
    first = day * lines
    duckdb.sql(
        f"""COPY (SELECT {first} + i AS event_id, (i * 7919) % 50000 AS customer_id,
                         ['view', 'cart', 'order'][1 + i % 3] AS kind, round((i % 10000) / 100, 2) AS amount,
                         TIMESTAMP '2026-01-01' + INTERVAL (day) DAY + INTERVAL (i % 86400) SECOND AS at
                  FROM (SELECT range AS i, {day} AS day FROM range({lines})))
            TO '{sources / f"day_{day:04d}.jsonl"}' (FORMAT json)"""
    )


def timed_run(product, full_refresh: bool) -> float:
    from platform_lib.materialize import materialize_products

    start = time.perf_counter()
    [outcome] = materialize_products([product], dg.DagsterInstance.ephemeral(), full_refresh=full_refresh)
    seconds = time.perf_counter() - start
    assert outcome.ok, (outcome.status, outcome.message, outcome.failed)
    return seconds


def published_digest(product_id: str) -> tuple:
    from platform_lib import output_port

    path = output_port.current(product_id).path
    return duckdb.sql(f"SELECT count(*), sum(event_id), sum(hash(kind, amount, \"at\")) FROM '{path}'").fetchone()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--lines", type=int, default=100_000, help="events per day's file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-append-") as root:
        root = Path(root)
        domains, sources = root / "domains", root / "mesh" / "sources" / "events"
        (domains / "events" / "products").mkdir(parents=True)
        (domains / "events" / "domain.yaml").write_text("name: events\nowner: team-web\n")
        (domains / "events" / "products" / "day_events.yaml").write_text(PRODUCT)
        sources.mkdir(parents=True)
        os.environ.update(MESH_DOMAINS_DIR=str(domains), MESH_DATA_DIR=str(root / "mesh"))
        from platform_lib.contract import load_domain, load_products

        [product] = load_products(load_domain(domains / "events"))
        for day in range(args.days):
            write_day(sources, day, args.lines)
        timed_run(product, full_refresh=False)  # the first publish reads every file
        appended, refreshed, same = [], [], True
        for turn in range(TURNS):
            write_day(sources, args.days + turn, args.lines)
            appended.append(timed_run(product, full_refresh=False))
            after_append = published_digest(product.id)
            refreshed.append(timed_run(product, full_refresh=True))
            same = same and published_digest(product.id) == after_append
            print(f"turn {turn + 1}: {args.days + turn + 1} files, append {appended[-1]:.2f}s, full refresh {refreshed[-1]:.2f}s")
        rows = published_digest(product.id)[0]
    append_s, full_s = min(appended), min(refreshed)
    print(
        f"BENCH append days={args.days} lines_per_day={args.lines} rows={rows} append_s={append_s:.2f} "
        f"full_refresh_s={full_s:.2f} full_refresh_vs_append={full_s / append_s:.1f} same_output={str(same).lower()}"
    )


if __name__ == "__main__":
    main()
