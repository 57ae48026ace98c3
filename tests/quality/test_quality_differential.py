"""The compiler and Great Expectations agree on every compiled expectation.

For each seeded dataset, every rule is evaluated by the DuckDB compiler and, in one
suite run, by GE on the same pandas copy that the GE fallback would use. A
disagreement fails with the data and both results.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pytest

from platform_lib.quality import evaluate_rules
from platform_lib.quality.catalog import SIGNATURES
from platform_lib.quality.ge_runner import pandas_frame, validate_frame
from tests.quality.differential import datasets, load, rules

DATASETS = datasets()
COMPARED = ("success", "element_count", "unexpected_count", "unexpected_percent", "observed_value")
NOT_COMPARED = {"expect_column_values_to_be_of_type"}  # GE on pandas compares dtypes, the compiler DuckDB's types (test_quality_engine)


def test_every_compiled_expectation_is_compared():
    """A compiled expectation the differential suite leaves out could answer anything."""
    assert {rule.expect for rule in rules()} | NOT_COMPARED == set(SIGNATURES)


def same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and not isinstance(ours, bool):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs))
    return ours == theirs


@pytest.mark.parametrize("name", list(DATASETS))
def test_compiler_agrees_with_great_expectations(name):
    connection = duckdb.connect()
    table = load(connection, name, DATASETS[name])
    suite = rules()
    ours = evaluate_rules(connection, table, suite)
    theirs = validate_frame(pandas_frame(connection, table), suite)
    assert {result.engine for result in ours} == {"duckdb"}, "every rule in the differential suite must be compiled"
    disagreements = []
    for mine, ge in zip(ours, theirs):
        fields = [f for f in COMPARED if not same(getattr(mine, f), getattr(ge, f))]
        if mine.details.get("missing_count") != ge.details.get("missing_count"):
            fields.append("missing_count")
        if "exception" in ge.details:
            fields.append("GE raised")
        if fields:
            disagreements.append(f"{mine.rule.expect} {mine.rule.kwargs} differ on {fields}:\n  duckdb: {mine}\n  ge:     {ge}")
    rows = "\n".join(map(repr, DATASETS[name]))
    assert not disagreements, f"data ({name}):\n{rows}\n\n" + "\n\n".join(disagreements)
