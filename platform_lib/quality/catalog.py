"""The expectations the DuckDB compiler covers, and their kwargs, checked without GE.

Importing great_expectations costs seconds, and every Dagster code location validates
its contracts at load. So the kwargs of compiled expectations are checked here, from a
signature per expectation type written down from GE 1.x (the tests compare each
signature with GE's own class). Only rules outside this catalog load GE to validate.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Callable

Check = Callable[[Any], str | None]
"""Returns a problem with a kwarg's value, or None if the value is fine."""

PAIR_IGNORE = ("both_values_are_missing", "either_value_is_missing", "neither")
MULTI_IGNORE = ("all_values_are_missing", "any_value_is_missing", "never")
SCALAR_TYPES = (str, int, float, bool, datetime.date)


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _optional_flag(value: Any) -> str | None:
    return None if value is None else _flag(value)


def _number(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"


def _count(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else "must be a whole number >= 0"


def _bound(value: Any) -> str | None:
    if value is None or isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value)
            return None
        except ValueError:
            return "must be a number or an ISO date/time"
    return "must be a number or an ISO date/time"


def _values(value: Any) -> str | None:
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, SCALAR_TYPES) for v in value):
        return None
    return "must be a list of values"


def _names(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value):
        return None
    return "must be a non-empty list of column names"


def _optional_names(value: Any) -> str | None:
    return None if value is None else _names(value)


def _regex(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a regular expression string"
    try:
        re.compile(value)
    except re.error as error:
        return f"is not a valid regular expression ({error})"
    return None


def _one_of(*options: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"

    return check


@dataclass(frozen=True)
class Signature:
    """An expectation's kwargs: which are required, how each is checked, which name columns."""

    family: str
    """The compiler's function for it (compiler.FAMILIES); each family tells its expectations
    apart by their exact names, so one added to a family without its own case fails loudly."""
    required: dict[str, Check] = field(default_factory=dict)
    optional: dict[str, Check] = field(default_factory=dict)
    column_kwargs: tuple[str, ...] = ()
    mostly: bool = False
    needs_bound: bool = False

    def problems(self, kwargs: dict[str, Any], columns: set[str]) -> list[str]:
        allowed = {**self.required, **self.optional}
        found = [f"unknown kwarg '{k}' (allowed: {', '.join(sorted(allowed))})" for k in kwargs if k not in allowed and k != "mostly"]
        if "mostly" in kwargs and not self.mostly:
            found.append("`mostly` does not apply to this expectation")
        found += [f"kwarg '{k}' is required" for k in self.required if k not in kwargs]
        found += [f"kwarg '{k}' {p}" for k, v in kwargs.items() if k in allowed and (p := allowed[k](v))]
        if self.needs_bound and kwargs.get("min_value") is None and kwargs.get("max_value") is None:
            found.append("give min_value, max_value or both")
        return found or unknown_columns(kwargs, self.column_kwargs, columns)


def crossed_bounds(kwargs: dict[str, Any]) -> str | None:
    """A `min_value` above its `max_value`, which GE itself accepts (ISO dates compare as
    text; bounds of kinds that do not compare, a date and a number, are left to the run)."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    try:
        crossed = low is not None and high is not None and low > high
    except TypeError:
        return None
    return f"min_value {low} is above max_value {high}: the rule could never pass" if crossed else None


def unknown_columns(kwargs: dict[str, Any], keys: tuple[str, ...], columns: set[str]) -> list[str]:
    """Problems with kwargs among `keys` that name (a list of) columns the product lacks."""
    found = []
    for key in keys:
        names = kwargs.get(key)
        for name in [names] if isinstance(names, str) else names or []:
            if name not in columns:
                found.append(f"{key} '{name}' is not a column of this product")
    return found


BETWEEN = {"min_value": _bound, "max_value": _bound, "strict_min": _flag, "strict_max": _flag}
COLUMN = {"column": _text}


def _column_map(**required: Check) -> Signature:
    return Signature("column_map", {**COLUMN, **required}, column_kwargs=("column",), mostly=True)


def _column_statistic() -> Signature:
    return Signature("column_statistic", COLUMN, BETWEEN, column_kwargs=("column",))


def _distinct_values() -> Signature:
    return Signature("distinct_values", {**COLUMN, "value_set": _values}, column_kwargs=("column",))


SIGNATURES: dict[str, Signature] = {
    "expect_column_values_to_not_be_null": _column_map(),
    "expect_column_values_to_be_null": _column_map(),
    "expect_column_values_to_be_unique": _column_map(),
    "expect_column_values_to_be_in_set": _column_map(value_set=_values),
    "expect_column_values_to_not_be_in_set": _column_map(value_set=_values),
    "expect_column_values_to_be_between": Signature("column_map", COLUMN, BETWEEN, ("column",), mostly=True, needs_bound=True),
    "expect_column_values_to_match_regex": Signature("column_map", COLUMN, {"regex": _regex}, ("column",), mostly=True),
    "expect_column_values_to_not_match_regex": _column_map(regex=_regex),
    "expect_column_value_lengths_to_be_between": Signature("column_map", COLUMN, BETWEEN, ("column",), mostly=True, needs_bound=True),
    "expect_column_value_lengths_to_equal": _column_map(value=_count),
    "expect_column_values_to_be_of_type": Signature("column_type", {**COLUMN, "type_": _text}, column_kwargs=("column",), mostly=True),
    "expect_column_min_to_be_between": _column_statistic(),
    "expect_column_max_to_be_between": _column_statistic(),
    "expect_column_mean_to_be_between": _column_statistic(),
    "expect_column_median_to_be_between": _column_statistic(),
    "expect_column_sum_to_be_between": _column_statistic(),
    "expect_column_stdev_to_be_between": _column_statistic(),
    "expect_column_unique_value_count_to_be_between": _column_statistic(),
    "expect_column_proportion_of_unique_values_to_be_between": _column_statistic(),
    "expect_column_distinct_values_to_be_in_set": _distinct_values(),
    "expect_column_distinct_values_to_contain_set": _distinct_values(),
    "expect_column_distinct_values_to_equal_set": _distinct_values(),
    "expect_table_row_count_to_be_between": Signature("row_count", optional=BETWEEN),
    "expect_table_row_count_to_equal": Signature("row_count", {"value": _count}),
    "expect_table_columns_to_match_ordered_list": Signature("column_list", optional={"column_list": _optional_names}),
    "expect_table_columns_to_match_set": Signature("column_set", optional={"column_set": _optional_names, "exact_match": _flag}),
    "expect_compound_columns_to_be_unique": Signature(
        "compound_unique", {"column_list": _names}, {"ignore_row_if": _one_of(*MULTI_IGNORE)}, ("column_list",), mostly=True
    ),
    "expect_multicolumn_sum_to_equal": Signature(
        "multicolumn_sum", {"column_list": _names, "sum_total": _number}, {"ignore_row_if": _one_of(*MULTI_IGNORE)}, ("column_list",), mostly=True
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": Signature(
        "column_pair",
        {"column_A": _text, "column_B": _text},
        {"or_equal": _optional_flag, "ignore_row_if": _one_of(*PAIR_IGNORE)},
        ("column_A", "column_B"),
        mostly=True,
    ),
}

GE_ONLY_KWARGS = frozenset({"row_condition", "condition_parser"})
"""Valid GE kwargs the compiler does not translate: a rule using them runs in GE."""


def compiled_signature(expect: str, kwargs: dict[str, Any]) -> Signature | None:
    """The signature the compiler uses for this rule, or None if GE must run it."""
    if GE_ONLY_KWARGS & kwargs.keys():
        return None
    return SIGNATURES.get(expect)
