"""The benchmarks still run against the platform as it is: `make bench` is not part of CI,
so each one runs here, small and once (MESH_BENCH_REPEATS), and must print its BENCH line
with every figure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from platform_lib.storage import REPO_ROOT

pytestmark = pytest.mark.slow


def bench_figures(script: str, *args: str, **env: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        env={**os.environ, "MESH_BENCH_REPEATS": "1", **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    return dict(pair.split("=", 1) for pair in line.split()[2:])


def test_bench_dbt():
    figures = bench_figures("bench_dbt.py", MESH_BENCH_DBT_MODELS="3,6")
    assert set(figures) == {"no_dbt_load_s", "models3_load_s", "models6_load_s", "ratio3", "ratio6", "parse3_s", "parse6_s"}
    assert all(float(value) > 0 for value in figures.values())


def test_bench_growth():
    figures = bench_figures("bench_growth.py", "--sizes", "2", "--samples", "1")
    assert float(figures["location_s_2"]) > 0 and float(figures["workspace_s_2"]) > 0


def test_bench_quality():
    figures = bench_figures("bench_quality.py", "--rows", "20000")
    assert figures["rows"] == "20000" and float(figures["engine_s"]) > 0 and float(figures["ge_s"]) > 0


def test_bench_scale():
    figures = bench_figures("bench_scale.py", MESH_BENCH_SCALE="1")
    assert figures["same_output"] == "true"
    assert float(figures["in_process_s"]) > 0 and float(figures["distributed_s"]) > 0 and float(figures["floor_s"]) > 0


def test_bench_append():
    figures = bench_figures("bench_append.py", "--days", "3", "--lines", "1000")
    assert (figures["rows"], figures["same_output"]) == ("5000", "true")
    assert float(figures["append_s"]) > 0 and float(figures["full_refresh_s"]) > 0
