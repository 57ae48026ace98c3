"""Choose the engine for each rule and validate rules when a contract loads."""

from __future__ import annotations

from typing import Sequence

import duckdb

from platform_lib.contract import QualityRule
from platform_lib.quality.ge_runner import build_expectation, expectation_class, run_with_ge
from platform_lib.quality.results import RuleResult


def validate_rule(rule: QualityRule, columns: set[str]) -> None:
    """Raise ValueError naming the field if the rule cannot run on a table with `columns`."""
    if expectation_class(rule.expect) is None:
        raise ValueError(f"'{rule.expect}' is not a Great Expectations expectation type")
    for key in ("column", "column_A", "column_B"):
        if key in rule.kwargs and rule.kwargs[key] not in columns:
            raise ValueError(f"{key} '{rule.kwargs[key]}' is not a column of this product")
    for key in ("column_list",):
        for column in rule.kwargs.get(key, []):
            if column not in columns:
                raise ValueError(f"{key} names '{column}', which is not a column of this product")
    try:
        build_expectation(rule)
    except Exception as error:  # GE raises pydantic and its own errors for bad kwargs
        raise ValueError(f"invalid kwargs for {rule.expect}: {str(error).splitlines()[0]}") from None


def evaluate_rules(connection: duckdb.DuckDBPyConnection, relation: str, rules: Sequence[QualityRule]) -> list[RuleResult]:
    """Evaluate every rule against `relation` (a quoted table or view name)."""
    return run_with_ge(connection, relation, rules)
