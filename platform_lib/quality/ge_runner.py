"""Run expectations through Great Expectations 1.x itself, on a pandas batch.

GE's SQL datasource cannot read DuckDB (it fetches after closing the connection), so
the relation is copied into pandas: correct for any expectation, but slow and
memory-hungry on large tables. The compiler (compiler.py) runs the common ones in
DuckDB; this runs the rest, all of a table's rules in one suite validation.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from functools import cache
from typing import Any, Sequence

import duckdb

from platform_lib.contract import QualityRule
from platform_lib.quality.results import RuleResult, plain
from platform_lib.storage import data_frame

ENGINE = "great_expectations"
RULE_INDEX = "mesh_rule_index"
DETAIL_KEYS = ("missing_count", "partial_missing_list")
"""Result fields of GE's set-comparison expectations, kept in RuleResult.details."""


@cache
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@cache
def _batch_definition():
    asset = _context().data_sources.add_pandas("mesh").add_dataframe_asset("relation")
    return asset.add_batch_definition_whole_dataframe("whole")


def expectation_class(expect: str):
    """GE's class for an expectation type, or None if GE does not know it."""
    from great_expectations.expectations.registry import get_expectation_impl
    from great_expectations.exceptions import ExpectationNotFoundError

    _context()
    try:
        return get_expectation_impl(expect)
    except ExpectationNotFoundError:
        return None


def build_expectation(rule: QualityRule, index: int | None = None):
    """GE's expectation for the rule; `index` is kept in its meta to find its result in a suite run."""
    kwargs = dict(rule.kwargs)
    if index is not None:
        kwargs["meta"] = {**(kwargs.get("meta") or {}), RULE_INDEX: index}
    return expectation_class(rule.expect)(**kwargs)


def condition_columns(expectation) -> set[str]:
    """The columns the expectation's `row_condition` reads. GE parses its own syntax into
    conditions on columns; a pandas query (GE passes it to `DataFrame.query`) is read as
    the Python expression it is, backquoted names too, leaving out the functions it calls.
    Raises ValueError for a query pandas could not read: it would fail every run."""
    from great_expectations.expectations.row_conditions import AndCondition, OrCondition, PassThroughCondition

    def read(condition) -> set[str]:
        if condition is None:
            return set()
        if isinstance(condition, PassThroughCondition):
            return _query_names(condition.pass_through_filter)
        if isinstance(condition, (AndCondition, OrCondition)):
            return set().union(*map(read, condition.conditions))
        return {condition.column.name}

    return read(expectation.row_condition)


def _query_names(query: str) -> set[str]:
    quoted = set(re.findall(r"`([^`]*)`", query))
    try:
        tree = ast.parse(re.sub(r"`[^`]*`", "True", query), mode="eval")
    except SyntaxError as error:  # Spark SQL's `a = 'x'` too: GE runs on pandas here
        raise ValueError(f"row_condition is not a pandas query ({error.msg}): {query}") from None
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    named = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called}
    return quoted | (named - {"index"})  # `index` is the frame's index in a query


def _exception_message(info: dict[str, Any]) -> str | None:
    """Why GE could not compute an expectation: its message, or one per metric that raised
    (a `row_condition` pandas cannot evaluate fails every metric of the rule alike)."""
    if "exception_message" in info:
        return info["exception_message"]
    messages = dict.fromkeys(m for v in info.values() if isinstance(v, dict) and (m := v.get("exception_message")))
    return "; ".join(messages) or None


def _rule_result(rule: QualityRule, outcome) -> RuleResult:
    detail = dict(outcome.result or {})
    details = dict(detail.get("details") or {})
    if "element_count" not in detail:
        details.update({key: detail[key] for key in DETAIL_KEYS if key in detail})
    if error := _exception_message(outcome.exception_info or {}):
        details["exception"] = error
    return RuleResult(
        rule=rule,
        success=bool(outcome.success),
        engine=ENGINE,
        element_count=plain(detail.get("element_count")),
        unexpected_count=plain(detail.get("unexpected_count")),
        unexpected_percent=plain(detail.get("unexpected_percent")),
        partial_unexpected_list=plain(detail.get("partial_unexpected_list") or []),
        observed_value=plain(detail.get("observed_value")),
        details=plain(details),
    )


def validate_frame(frame, rules: Sequence[QualityRule]) -> list[RuleResult]:
    """Validate a pandas DataFrame against every rule in one GE suite run, in rule order."""
    from great_expectations import ExpectationSuite

    if not rules:
        return []
    suite = ExpectationSuite(name="mesh", expectations=[build_expectation(rule, i) for i, rule in enumerate(rules)])
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    outcomes = batch.validate(suite).results
    by_index = {outcome.expectation_config.meta[RULE_INDEX]: outcome for outcome in outcomes}
    return [_rule_result(rule, by_index[i]) for i, rule in enumerate(rules)]


def pandas_frame(connection: duckdb.DuckDBPyConnection, relation: str):
    """The relation as the pandas frame GE validates.

    DuckDB returns integer columns with nulls as pandas' nullable Int64, on which GE's
    pair and multicolumn expectations raise ("boolean value of NA is ambiguous");
    float64 with NaN is what GE's pandas code is written for.
    """
    import pandas as pd

    frame = data_frame(connection, relation)
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dtype) and frame[name].hasnans:
            frame[name] = frame[name].astype("float64")
    return frame


def run_with_ge(connection: duckdb.DuckDBPyConnection, relation: str, rules: Sequence[QualityRule]) -> list[RuleResult]:
    if not rules:
        return []
    return validate_frame(pandas_frame(connection, relation), rules)
