"""Choose the engine for each rule, and validate rules when a contract loads.

Rules the compiler covers are validated against the catalog and computed in DuckDB;
only the others pay for importing Great Expectations, at load and at run time.
"""

from __future__ import annotations

from typing import Sequence

import duckdb

from platform_lib.contract import COLUMN_KWARGS, QualityRule
from platform_lib.quality.catalog import compiled_signature, crossed_bounds, unknown_columns
from platform_lib.quality.compiler import ENGINE, Query, Table, compile_rule
from platform_lib.quality.results import RuleResult


def validate_rule(rule: QualityRule, columns: set[str]) -> None:
    """Raise ValueError naming the field if the rule cannot run on a table with `columns`."""
    signature = compiled_signature(rule.expect, rule.kwargs)
    if signature is None:
        _validate_with_ge(rule, columns)
    elif problems := signature.problems(rule.kwargs, columns):
        raise ValueError("; ".join(problems))
    if crossed := crossed_bounds(rule.kwargs):  # whichever engine runs it: GE accepts such bounds too
        raise ValueError(crossed)


def _validate_with_ge(rule: QualityRule, columns: set[str]) -> None:
    from platform_lib.quality.ge_runner import build_expectation, condition_columns, expectation_class

    if expectation_class(rule.expect) is None:
        raise ValueError(f"'{rule.expect}' is not a Great Expectations expectation type")
    problems = unknown_columns(rule.kwargs, COLUMN_KWARGS, columns)
    if problems:
        raise ValueError("; ".join(problems))
    try:
        expectation = build_expectation(rule)
    except Exception as error:  # GE raises pydantic and its own errors for bad kwargs
        raise ValueError(f"invalid kwargs for {rule.expect}: {str(error).splitlines()[0]}") from None
    unknown = sorted(condition_columns(expectation) - columns)  # raises for a query pandas cannot read
    if unknown:  # GE would fail the check on every run
        raise ValueError(f"row_condition reads {', '.join(map(repr, unknown))}: not a column of this product")


def _alone(connection: duckdb.DuckDBPyConnection, table: Table, rule: QualityRule) -> RuleResult:
    """The rule in a query of its own; failed, with DuckDB's error, if that query fails."""
    query = Query()
    finish = compile_rule(rule, table, query)
    try:
        return finish(query.run(connection, table.relation))
    except duckdb.Error as error:
        return RuleResult(rule=rule, success=False, engine=ENGINE, details={"exception": str(error).splitlines()[0]})


def evaluate_rules(connection: duckdb.DuckDBPyConnection, relation: str, rules: Sequence[QualityRule]) -> list[RuleResult]:
    """Evaluate every rule against `relation` (a quoted table or view name), in rule order.

    Compiled rules share one query; the rest run in one GE validation of a pandas copy.
    A rule whose SQL fails on this data (a sum out of range, say) fails alone, as a rule GE
    cannot compute does: the shared query fails for all, so its rules then run one by one.
    """
    table, query = Table.describe(connection, relation), Query()
    finishers = {index: compile_rule(rule, table, query) for index, rule in enumerate(rules)}
    compiled = [index for index, finish in finishers.items() if finish is not None]
    try:
        row = query.run(connection, relation)
        results = {index: finishers[index](row) for index in compiled}
    except duckdb.Error:
        results = {index: _alone(connection, table, rules[index]) for index in compiled}
    fallback = [index for index, finish in finishers.items() if finish is None]
    if fallback:
        from platform_lib.quality.ge_runner import run_with_ge

        results.update(zip(fallback, run_with_ge(connection, relation, [rules[i] for i in fallback])))
    return [results[index] for index in range(len(rules))]
