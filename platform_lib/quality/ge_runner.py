"""Run expectations through Great Expectations 1.x itself, on a pandas batch.

GE's SQL datasource cannot read DuckDB (it fetches after closing the connection), so
the relation is copied into pandas: correct for any expectation, but slow and
memory-hungry on large tables. The DuckDB compiler handles the common ones.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any, Sequence

import duckdb

from platform_lib.contract import QualityRule
from platform_lib.quality.results import RuleResult

ENGINE = "great_expectations"


@cache
def _batch_definition():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("mesh").add_dataframe_asset("relation")
    return asset.add_batch_definition_whole_dataframe("whole")


def expectation_class(expect: str):
    """GE's class for an expectation type, or None if GE does not know it."""
    from great_expectations.expectations.registry import get_expectation_impl
    from great_expectations.exceptions import ExpectationNotFoundError

    try:
        return get_expectation_impl(expect)
    except ExpectationNotFoundError:
        return None


def build_expectation(rule: QualityRule):
    return expectation_class(rule.expect)(**rule.kwargs)


def _plain(value: Any) -> Any:
    """GE returns numpy scalars and the like; metadata wants plain Python values."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run_with_ge(connection: duckdb.DuckDBPyConnection, relation: str, rules: Sequence[QualityRule]) -> list[RuleResult]:
    if not rules:
        return []
    frame = connection.sql(f"SELECT * FROM {relation}").df()
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    results = []
    for rule in rules:
        outcome = batch.validate(build_expectation(rule))
        detail = dict(outcome.result or {})
        results.append(
            RuleResult(
                rule=rule,
                success=bool(outcome.success),
                engine=ENGINE,
                element_count=_plain(detail.get("element_count", len(frame))),
                unexpected_count=_plain(detail.get("unexpected_count")),
                unexpected_percent=_plain(detail.get("unexpected_percent")),
                partial_unexpected_list=_plain(detail.get("partial_unexpected_list") or []),
                observed_value=_plain(detail.get("observed_value")),
            )
        )
    return results

