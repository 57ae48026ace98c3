"""Run expectations through Great Expectations 1.x itself, on a pandas batch.

GE's SQL datasource cannot read DuckDB (it fetches after closing the connection), so
the relation is copied into pandas: correct for any expectation, but slow and
memory-hungry on large tables. The compiler (compiler.py) runs the common ones in
DuckDB; this runs the rest, all of a table's rules in one suite validation.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any, Sequence

import duckdb

from platform_lib.contract import QualityRule
from platform_lib.quality.results import RuleResult
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


def _plain(value: Any) -> Any:
    """GE returns numpy scalars, NaN and the like; metadata wants plain Python values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, float) and value != value:
        return None
    return value


def _rule_result(rule: QualityRule, outcome) -> RuleResult:
    detail = dict(outcome.result or {})
    details = dict(detail.get("details") or {})
    if "element_count" not in detail:
        details.update({key: detail[key] for key in DETAIL_KEYS if key in detail})
    error = (outcome.exception_info or {}).get("exception_message")
    if error:
        details["exception"] = error
    return RuleResult(
        rule=rule,
        success=bool(outcome.success),
        engine=ENGINE,
        element_count=_plain(detail.get("element_count")),
        unexpected_count=_plain(detail.get("unexpected_count")),
        unexpected_percent=_plain(detail.get("unexpected_percent")),
        partial_unexpected_list=_plain(detail.get("partial_unexpected_list") or []),
        observed_value=_plain(detail.get("observed_value")),
        details=_plain(details),
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
