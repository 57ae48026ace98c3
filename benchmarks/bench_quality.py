"""Quality benchmark: our DuckDB engine vs one hand-written aggregate query vs GE on pandas.

A generated line-items table (default 6 million rows) is checked by a suite of 14 rules
three ways, each in its own subprocess so that peak memory (ru_maxrss) is its own;
wall-clock seconds make the ratios, CPU seconds (all threads) are printed beside them
because a shared machine makes wall clocks noisy:
  engine  platform_lib.quality.evaluate_rules, as the asset checks run it
  floor   one hand-written DuckDB query computing the same answers (the best we could do,
          knowing the data: a bitmap of order_id * 4 + line_no counts duplicate keys
          without a hash table, the regex tests each distinct email once, and with no
          status outside the set, counting rows stands in for counting distinct values)
  ge      Great Expectations 1.x on the pandas copy, as the GE fallback runs it
The three must agree on every rule's verdict and unexpected count. Ends with one line:
BENCH quality engine_vs_floor=... ge_vs_engine=... engine_peak_mb=... ge_peak_mb=... ...
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from platform_lib.contract import QualityRule  # noqa: E402

TABLE = "line_items"
REPEATS = 3
"""Runs of the engine and of the floor; the fastest counts. GE, at minutes a run, runs once."""
STATUSES = ["placed", "shipped", "delivered", "returned"]
EMAIL = "^[^@ ]+@[^@ ]+$"
SUITE = [
    ("expect_table_row_count_to_be_between", {"min_value": 1}),
    ("expect_table_columns_to_match_set", {"column_set": ["order_id", "line_no", "product_id", "quantity", "unit_price", "discount",
                                                          "amount", "status", "email", "country", "order_date", "ship_date"]}),
    ("expect_column_values_to_not_be_null", {"column": "order_id"}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["order_id", "line_no"]}),
    ("expect_column_values_to_be_between", {"column": "quantity", "min_value": 1, "max_value": 100}),
    ("expect_column_values_to_be_between", {"column": "unit_price", "min_value": 0, "max_value": 1000, "strict_min": True}),
    ("expect_column_values_to_be_in_set", {"column": "status", "value_set": STATUSES}),
    ("expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL, "mostly": 0.99}),
    ("expect_column_value_lengths_to_equal", {"column": "country", "value": 2}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "ship_date", "column_B": "order_date", "or_equal": True}),
    ("expect_column_mean_to_be_between", {"column": "amount", "min_value": 0, "max_value": 10000}),
    ("expect_column_max_to_be_between", {"column": "unit_price", "max_value": 1000}),
    ("expect_column_stdev_to_be_between", {"column": "discount", "max_value": 1}),
    ("expect_column_distinct_values_to_be_in_set", {"column": "status", "value_set": STATUSES}),
]
FLOOR = f"""
SELECT
  count(*),
  (SELECT list(column_name ORDER BY column_name) FROM information_schema.columns WHERE table_name = '{TABLE}'),
  count(*) FILTER (WHERE order_id IS NULL),
  count(*) - bit_count(bitstring_agg(order_id * 4 + line_no - 1, 0, {{last_key}})),
  count(*) FILTER (WHERE quantity NOT BETWEEN 1 AND 100),
  count(*) FILTER (WHERE unit_price <= 0 OR unit_price > 1000),
  count(*) FILTER (WHERE status NOT IN ({", ".join(f"'{s}'" for s in STATUSES)})),
  (SELECT sum(n) FROM (SELECT email, count(*) AS n FROM {TABLE} GROUP BY email) WHERE NOT regexp_matches(email, '{EMAIL}')),
  count(*) FILTER (WHERE length(country) <> 2),
  count(*) FILTER (WHERE NOT coalesce(ship_date >= order_date, FALSE)),
  avg(amount),
  max(unit_price),
  stddev_samp(discount),
  count(*) FILTER (WHERE status NOT IN ({", ".join(f"'{s}'" for s in STATUSES)}))
FROM {TABLE}
"""


def generate(path: Path, rows: int) -> None:
    """Line items with a sprinkle of bad rows: a few bad emails, a few null discounts."""
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"""
            CREATE TABLE {TABLE} AS
            SELECT
              (i // 4)::BIGINT AS order_id,
              (i % 4 + 1)::INTEGER AS line_no,
              'P' || lpad((hash(i) % 50000)::VARCHAR, 6, '0') AS product_id,
              (1 + hash(i * 3) % 20)::INTEGER AS quantity,
              round(1 + (hash(i * 5) % 99900) / 100.0, 2)::DOUBLE AS unit_price,
              CASE WHEN i % 97 = 0 THEN NULL ELSE (hash(i * 7) % 30) / 100.0 END::DOUBLE AS discount,
              round((1 + hash(i * 3) % 20) * (1 + (hash(i * 5) % 99900) / 100.0), 2)::DECIMAL(12, 2) AS amount,
              ['placed', 'shipped', 'delivered', 'returned'][1 + i % 4] AS status,
              CASE WHEN i % 1000 = 0 THEN 'not an email' ELSE 'buyer' || (i % 100000) || '@example.com' END AS email,
              ['DE', 'FR', 'NL', 'IT', 'ES'][1 + i % 5] AS country,
              DATE '2024-01-01' + (i // 4 % 700)::INTEGER AS order_date,
              DATE '2024-01-01' + (i // 4 % 700)::INTEGER + (i % 9)::INTEGER AS ship_date
            FROM range({rows}) t(i)
        """)


def rules() -> list[QualityRule]:
    return [QualityRule(expect=expect, **kwargs) for expect, kwargs in SUITE]


def measure(mode: str, path: Path) -> dict:
    """Run one way of checking, in this (fresh) process; report time, peak memory, answers.

    Answers are one per rule: its unexpected count, or the statistic it observed.
    """
    from platform_lib.quality import evaluate_rules
    from platform_lib.quality.results import plain
    from platform_lib.quality.ge_runner import run_with_ge

    connection, suite = duckdb.connect(str(path), read_only=True), rules()
    rows = connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    runs = []
    for _ in range(1 if mode == "ge" else REPEATS):
        started, cpu = time.perf_counter(), _cpu_seconds()
        if mode == "floor":
            answers = [plain(value) for value in connection.execute(FLOOR.format(last_key=rows - 1)).fetchone()]
        else:
            results = (evaluate_rules if mode == "engine" else run_with_ge)(connection, TABLE, suite)
            answers = [r.observed_value if r.unexpected_count is None else r.unexpected_count for r in results]
        runs.append((time.perf_counter() - started, _cpu_seconds() - cpu))
    seconds, cpu = min(runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "answers": answers}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(mode: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--measure", mode, "--db", str(path)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _same(ours, theirs) -> bool:
    if isinstance(ours, float) or isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9)
    return ours == theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--measure", choices=["engine", "floor", "ge"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        generate(path, args.rows)
        engine, floor, ge = (run_child(mode, path) for mode in ("engine", "floor", "ge"))
    for name, other in (("floor", floor), ("GE", ge)):
        if not all(_same(a, b) for a, b in zip(engine["answers"], other["answers"], strict=True)):
            raise SystemExit(f"engine and {name} disagree:\n engine {engine['answers']}\n {name} {other['answers']}")
    print(
        f"BENCH quality rows={args.rows} rules={len(SUITE)} engine_vs_floor={engine['seconds'] / floor['seconds']:.2f} "
        f"ge_vs_engine={ge['seconds'] / engine['seconds']:.1f} engine_vs_floor_cpu={engine['cpu'] / floor['cpu']:.2f} "
        f"ge_vs_engine_cpu={ge['cpu'] / engine['cpu']:.1f} ge_vs_engine_peak={ge['peak_mb'] / engine['peak_mb']:.1f} "
        f"engine_peak_mb={engine['peak_mb']:.0f} "
        f"floor_peak_mb={floor['peak_mb']:.0f} ge_peak_mb={ge['peak_mb']:.0f} floor_s={floor['seconds']:.3f} "
        f"engine_s={engine['seconds']:.3f} ge_s={ge['seconds']:.1f} floor_cpu_s={floor['cpu']:.2f} "
        f"engine_cpu_s={engine['cpu']:.2f} ge_cpu_s={ge['cpu']:.1f}"
    )


if __name__ == "__main__":
    main()
