"""Compile quality rules into one DuckDB query whose single result row answers them all.

Every rule adds aggregate expressions to a shared `Query` (identical expressions are
computed once) and returns a function that turns the result row into a GE-shaped
`RuleResult`. Row-level rules become filtered counts, column statistics become
aggregates, so one scan of the table answers them together. Uniqueness of dense
integer keys is one more aggregate, a bitmap; other keys need a grouping of their own,
a scalar subquery in the same statement, as does a regex on a column whose values
repeat (tested once per distinct value).

GE validates a pandas copy of the table, where NaN is missing, an empty column sums to
0 and `mostly` is measured over non-missing values; the SQL here follows those rules
so that both engines give the same answers (the differential tests hold them to it).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any, Callable

import duckdb

from platform_lib.contract import QualityRule
from platform_lib.quality import bitmap, repeats
from platform_lib.quality.catalog import compiled_signature
from platform_lib.quality.regex import to_re2
from platform_lib.quality.results import RuleResult, plain
from platform_lib.storage import column_types, is_number_type, literal, quote

ENGINE = "duckdb"
SAMPLE_SIZE = 20
ROWS_PER_PARTITION = 1_000_000
ANY_TEXT = "(?s).*"

Finish = Callable[["Answers"], RuleResult]


@dataclass(frozen=True)
class Table:
    """The relation under test, its columns (name -> DuckDB type, in table order) and size."""

    connection: duckdb.DuckDBPyConnection
    relation: str
    columns: dict[str, str]
    rows: int

    @classmethod
    def describe(cls, connection: duckdb.DuckDBPyConnection, relation: str) -> Table:
        rows = connection.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
        return cls(connection, relation, column_types(connection, relation), rows)

    def is_numeric(self, column: str) -> bool:
        return is_number_type(self.columns[column])

    def is_text(self, column: str) -> bool:
        return self.columns[column] == "VARCHAR"

    def value(self, column: str) -> str:
        """A column's values with NaN read as missing, as pandas (and so GE) reads them."""
        if self.columns[column] in ("FLOAT", "DOUBLE"):
            return f"nullif({quote(column)}, 'NaN')"
        return quote(column)


class Query:
    """The aggregates of one scan; each distinct expression is computed once."""

    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}

    def add(self, expression: str) -> str:
        return self._aliases.setdefault(expression, f"a{len(self._aliases)}")

    def run(self, connection: duckdb.DuckDBPyConnection, relation: str) -> Answers:
        row: tuple[Any, ...] = ()
        if self._aliases:
            selects = ", ".join(f"{expression} AS {alias}" for expression, alias in self._aliases.items())
            row = connection.execute(f"SELECT {selects} FROM {relation}").fetchone()
        return Answers(connection, relation, dict(zip(self._aliases.values(), row)))


class Answers:
    """A query's result row, and examples of unexpected values, fetched only for failing rules.

    Collecting examples inside the scan would cost every row a second evaluation of the
    rule; a separate `LIMIT` query stops as soon as it has found enough of them.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, relation: str, row: dict[str, Any]):
        self._connection, self._relation, self._row = connection, relation, row

    def __getitem__(self, alias: str) -> Any:
        return self._row[alias]

    def scalar(self, expression: str) -> Any:
        """An expression left out of the shared scan, computed only when a rule needs it."""
        return self._connection.execute(f"SELECT {expression}").fetchone()[0]

    def sample(self, select: str, where: str) -> list[Any]:
        query = f"SELECT {select} FROM {self._relation} WHERE {where} LIMIT {SAMPLE_SIZE}"
        return [plain(value) for value, in self._connection.execute(query).fetchall()]


def sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{value}'::DOUBLE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return f"TIMESTAMP {literal(value.isoformat(sep=' '))}"
    if isinstance(value, datetime.date):
        return f"DATE {literal(value.isoformat())}"
    return literal(str(value))


def _fits(table: Table, column: str, bound: Any) -> bool:
    """Whether DuckDB can compare the column with this bound (else GE runs the rule, and fails it)."""
    if bound is None:
        return True
    if table.is_numeric(column):
        return isinstance(bound, (int, float)) and not isinstance(bound, bool)
    return isinstance(bound, (str, datetime.date))


def _comparable(table: Table, column: str, values: Any) -> list[Any]:
    """The values of a set that can equal a value of the column (pandas never matches 1 with '1')."""
    if table.is_numeric(column):
        return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if table.is_text(column):
        return [v for v in values if isinstance(v, str)]
    return list(values)


def _member(table: Table, column: str, values: Any) -> str:
    candidates = _comparable(table, column, values)
    return f"{table.value(column)} IN ({', '.join(map(sql_value, candidates))})" if candidates else "FALSE"


def _in_range(expression: str, kwargs: dict[str, Any]) -> str:
    parts = []
    if kwargs.get("min_value") is not None:
        parts.append(f"{expression} {'>' if kwargs.get('strict_min') else '>='} {sql_value(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        parts.append(f"{expression} {'<' if kwargs.get('strict_max') else '<='} {sql_value(kwargs['max_value'])}")
    return " AND ".join(parts) or "TRUE"


def within(observed: Any, kwargs: dict[str, Any]) -> bool:
    """GE's test of a statistic against min_value/max_value (a missing statistic fails)."""
    if observed is None:
        return False
    for key, strict, above in (("min_value", "strict_min", True), ("max_value", "strict_max", False)):
        bound = kwargs.get(key)
        if bound is None:
            continue
        if isinstance(observed, datetime.date) and isinstance(bound, (str, datetime.date)):
            observed, bound = _comparable_moments(observed, bound)
        try:
            inside = (observed > bound if kwargs.get(strict) else observed >= bound) if above else (
                observed < bound if kwargs.get(strict) else observed <= bound
            )
        except TypeError:  # a text column against a numeric bound: GE fails the rule too
            return False
        if not inside:
            return False
    return True


def _comparable_moments(observed: datetime.date, bound: str | datetime.date) -> tuple[datetime.date, datetime.date]:
    """A DATE/TIMESTAMP statistic and a bound (ISO text, or the date or datetime YAML reads),
    made comparable as DuckDB compares them: a date is midnight, a naive moment is UTC."""
    if isinstance(bound, str):
        bound = datetime.datetime.fromisoformat(bound)
    if not isinstance(observed, datetime.datetime):
        if not isinstance(bound, datetime.datetime):
            return observed, bound
        observed = datetime.datetime.combine(observed, datetime.time())
    if not isinstance(bound, datetime.datetime):
        bound = datetime.datetime.combine(bound, datetime.time())
    if (observed.tzinfo is None) != (bound.tzinfo is None):
        observed, bound = (m if m.tzinfo else m.replace(tzinfo=datetime.timezone.utc) for m in (observed, bound))
    return observed, bound


def _map_result(rule: QualityRule, total: int, considered: int, unexpected: int, sample: Callable[[], list[Any]]) -> RuleResult:
    """GE's map-expectation verdict: `mostly` over the rows considered; no rows passes.

    `sample` fetches examples of unexpected values; it is called only if there are some."""
    mostly = rule.mostly if rule.mostly is not None else 1.0
    success = total == 0 or considered == 0 or (considered - unexpected) / considered >= mostly
    return RuleResult(
        rule=rule,
        success=success,
        engine=ENGINE,
        element_count=total,
        unexpected_count=unexpected,
        unexpected_percent=unexpected / considered * 100 if considered and total else None,
        partial_unexpected_list=sample()[:unexpected] if unexpected else [],
    )


def _row_condition(rule: QualityRule, table: Table) -> str | None:
    """For row-wise column rules: SQL true where a non-missing value is unexpected."""
    kwargs, column = rule.kwargs, rule.kwargs["column"]
    value = table.value(column)
    match rule.expect.removeprefix("expect_column_"):
        case "values_to_be_in_set":
            return f"NOT ({_member(table, column, kwargs['value_set'])})"
        case "values_to_not_be_in_set":
            return _member(table, column, kwargs["value_set"])
        case "values_to_be_between" if all(_fits(table, column, kwargs.get(k)) for k in ("min_value", "max_value")):
            return f"NOT ({_in_range(value, kwargs)})"
        case "values_to_match_regex" if table.is_text(column) and (pattern := to_re2(kwargs.get("regex", ANY_TEXT))):
            return f"NOT regexp_matches({value}, {literal(pattern)})"
        case "values_to_not_match_regex" if table.is_text(column) and (pattern := to_re2(kwargs["regex"])):
            return f"regexp_matches({value}, {literal(pattern)})"
        case "value_lengths_to_be_between" if table.is_text(column):
            return f"NOT ({_in_range(f'length({value})', kwargs)})"
        case "value_lengths_to_equal" if table.is_text(column):
            return f"length({value}) <> {int(kwargs['value'])}"
    return None


def _column_map(rule: QualityRule, table: Table, query: Query) -> Finish | None:
    column = rule.kwargs["column"]
    value, total = table.value(column), query.add("count(*)")
    if rule.expect in COUNTED_TESTS:
        return _counted(rule, table, query, total)
    condition = _row_condition(rule, table)
    if condition is None:
        return None
    failing = f"{value} IS NOT NULL AND {condition}"
    if rule.expect in COSTLY_TESTS and repeats.values_repeat(table.connection, table.relation, value, table.rows):
        counts = query.add(_count_by_value(table, column, condition))
        return lambda row: _map_result(rule, row[total], row[counts]["present"], row[counts]["unexpected"], lambda: row.sample(value, failing))
    present, unexpected = query.add(f"count({value})"), query.add(f"count(*) FILTER (WHERE {failing})")
    return lambda row: _map_result(rule, row[total], row[present], row[unexpected], lambda: row.sample(value, failing))


COUNTED_TESTS = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null", "expect_column_values_to_be_unique"}
"""Column map rules answered by counting values, not by a condition on each value."""


def _counted(rule: QualityRule, table: Table, query: Query, total: str) -> Finish:
    value = table.value(rule.kwargs["column"])
    present = query.add(f"count({value})")
    if rule.expect == "expect_column_values_to_not_be_null":
        return lambda row: _map_result(rule, row[total], row[total], row[total] - row[present], lambda: [None] * SAMPLE_SIZE)
    if rule.expect == "expect_column_values_to_be_null":
        return lambda row: _map_result(rule, row[total], row[total], row[present], lambda: row.sample(value, f"{value} IS NOT NULL"))
    return _unique(rule, table, query, [rule.kwargs["column"]], f"{value} IS NOT NULL", considered=present)


COSTLY_TESTS = {"expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"}
"""Row conditions worth testing once per distinct value when values repeat (see repeats.py)."""


def _count_by_value(table: Table, column: str, condition: str) -> str:
    """A scalar subquery: rows with a value, and those for which `condition` holds, testing each distinct value once.

    It reads only this column, so the shared scan need not read it at all."""
    value = table.value(column)
    by_value = f"SELECT {value} AS {quote(column)}, count(*) AS copies FROM {table.relation} WHERE {value} IS NOT NULL GROUP BY 1"
    return f"(SELECT {{'present': coalesce(sum(copies), 0), 'unexpected': coalesce(sum(copies) FILTER (WHERE {condition}), 0)}} FROM ({by_value}))"


def _unique(rule: QualityRule, table: Table, query: Query, columns: list[str], keep: str, considered: str) -> Finish:
    """A uniqueness rule over the rows `keep` selects; `considered` is the alias counting them.

    A key of dense integers is counted in a bitmap within the shared scan (see bitmap.py);
    the grouping that finds duplicates then runs only if the bitmap cannot prove them absent.
    """
    total, grouping = query.add("count(*)"), _duplicates(table, columns, keep)
    distinct = bitmap.distinct_keys(table.connection, table.relation, {c: table.columns[c] for c in columns}, table.rows, keep)
    if distinct is None:
        grouped = query.add(grouping)
    else:
        kept, counted = query.add(f"count(*) FILTER (WHERE {keep})"), query.add(distinct)

    def finish(row: Answers) -> RuleResult:
        if distinct is None:
            found = row[grouped]
        else:
            found = {"rows": 0, "sample": []} if row[counted] == row[kept] else row.scalar(grouping)
        return _map_result(rule, row[total], row[considered], found["rows"], lambda: plain(found["sample"]))

    return finish


def _duplicates(table: Table, columns: list[str], keep: str) -> str:
    """A scalar subquery: rows whose value (or tuple) occurs more than once, and examples.

    Counting copies needs a hash table of every distinct key; grouping by hash partitions,
    one after the other, keeps that table small (a third of the memory on 6M keys, and
    no slower) at the price of rescanning only the key columns.
    """
    values = ", ".join(table.value(c) for c in columns)
    key = table.value(columns[0]) if len(columns) == 1 else "{" + ", ".join(f"{literal(c)}: {table.value(c)}" for c in columns) + "}"
    partitions = max(1, math.ceil(table.rows / ROWS_PER_PARTITION))
    groups = " UNION ALL ".join(
        f"SELECT {key} AS key, count(*) AS copies FROM {table.relation} WHERE {keep}"
        + (f" AND hash({values}) % {partitions} = {part}" if partitions > 1 else "")
        + f" GROUP BY {values} HAVING count(*) > 1"
        for part in range(partitions)
    )
    return f"(SELECT {{'rows': coalesce(sum(copies), 0), 'sample': min(key, {SAMPLE_SIZE})}} FROM ({groups}))"


STATISTICS = {
    "expect_column_min_to_be_between": ("min({v})", False),
    "expect_column_max_to_be_between": ("max({v})", False),
    "expect_column_mean_to_be_between": ("avg({v})", True),
    "expect_column_median_to_be_between": ("median({v}::DOUBLE)", True),  # a DECIMAL median would round
    "expect_column_sum_to_be_between": ("coalesce(sum({v}), 0)", True),
    "expect_column_stdev_to_be_between": ("stddev_samp({v})", True),
    "expect_column_unique_value_count_to_be_between": ("count(DISTINCT {v})", False),
    "expect_column_proportion_of_unique_values_to_be_between": ("coalesce(count(DISTINCT {v}) / nullif(count({v}), 0), 0)", False),
}
"""Column statistics: SQL template and whether the column must be numeric."""


def _column_statistic(rule: QualityRule, table: Table, query: Query) -> Finish | None:
    template, numeric = STATISTICS[rule.expect]
    column = rule.kwargs["column"]
    if numeric and not table.is_numeric(column):
        return None
    statistic = query.add(template.format(v=table.value(column)))

    def finish(row: Answers) -> RuleResult:
        observed = plain(row[statistic])
        return RuleResult(rule=rule, success=within(observed, rule.kwargs), engine=ENGINE, observed_value=observed)

    return finish


DISTINCT_VALUES = {
    "expect_column_distinct_values_to_be_in_set": (True, False),
    "expect_column_distinct_values_to_contain_set": (False, True),
    "expect_column_distinct_values_to_equal_set": (True, True),
}
"""Whether a rule fails on values outside its set, and on members of the set missing from the column."""


def _distinct_values(rule: QualityRule, table: Table, query: Query) -> Finish:
    """GE 1.x compares distinct values with the set: values outside it, members missing from the column.

    Distinct aggregates each need a hash table, so the scan only counts rows outside the
    set; how many distinct values they hold is asked afterwards, and only if there are some.
    """
    wants_outside, wants_missing = DISTINCT_VALUES[rule.expect]
    column, value_set = rule.kwargs["column"], list(rule.kwargs["value_set"])
    value = table.value(column)
    member = _member(table, column, value_set)
    outside_where = f"{value} IS NOT NULL AND NOT ({member})"
    outside_rows = query.add(f"count(*) FILTER (WHERE {outside_where})") if wants_outside else None
    present = query.add(f"list(DISTINCT {value}) FILTER (WHERE {member})") if wants_missing else None

    def finish(row: Answers) -> RuleResult:
        outside = None
        if wants_outside:
            outside = row.scalar(f"(SELECT count(DISTINCT {value}) FROM {table.relation} WHERE {outside_where})") if row[outside_rows] else 0
        details = {}
        if wants_missing:
            found = set(row[present] or [])
            missing = sorted({v for v in value_set if v not in found}, key=repr)
            details = {"missing_count": len(missing), "partial_missing_list": missing[:SAMPLE_SIZE]}
        return RuleResult(
            rule=rule,
            success=not outside and not details.get("missing_count"),
            engine=ENGINE,
            unexpected_count=outside,
            partial_unexpected_list=row.sample(f"DISTINCT {value}", outside_where) if outside else [],
            details=details,
        )

    return finish


def _column_type(rule: QualityRule, table: Table, query: Query) -> Finish:
    """GE on a typed backend compares the column's declared type: here, DuckDB's type name."""
    observed = table.columns[rule.kwargs["column"]]
    try:
        expected = str(duckdb.sqltype(rule.kwargs["type_"]))
    except duckdb.Error:
        expected = None
    return lambda row: RuleResult(rule=rule, success=observed == expected, engine=ENGINE, observed_value=observed)


ROW_COUNT = {
    "expect_table_row_count_to_be_between": within,
    "expect_table_row_count_to_equal": lambda rows, kwargs: rows == kwargs["value"],
}
"""Whether a table's row count passes a rule's kwargs."""


def _row_count(rule: QualityRule, table: Table, query: Query) -> Finish:
    passes, rows = ROW_COUNT[rule.expect], query.add("count(*)")
    return lambda row: RuleResult(rule=rule, success=passes(row[rows], rule.kwargs), engine=ENGINE, observed_value=row[rows])


def _column_list(rule: QualityRule, table: Table, query: Query) -> Finish:
    """expect_table_columns_to_match_ordered_list"""
    names, expected = list(table.columns), rule.kwargs.get("column_list")
    mismatched = [
        {"Expected Column Position": i, "Expected": e, "Found": f}
        for i, (e, f) in enumerate(_padded(list(expected or []), names))
        if e != f
    ]
    success = expected is None or list(expected) == names
    details = {} if success else {"mismatched": mismatched}
    return lambda row: RuleResult(rule=rule, success=success, engine=ENGINE, observed_value=names, details=details)


def _column_set(rule: QualityRule, table: Table, query: Query) -> Finish:
    """expect_table_columns_to_match_set"""
    kwargs, names = rule.kwargs, list(table.columns)
    expected = set(kwargs.get("column_set") or [])
    unexpected, missing = sorted(set(names) - expected), sorted(expected - set(names))
    success = not missing and (not unexpected or not kwargs.get("exact_match", True))
    mismatched = {k: v for k, v in (("unexpected", unexpected), ("missing", missing)) if v}
    details = {"mismatched": mismatched} if mismatched else {}
    return lambda row: RuleResult(rule=rule, success=success, engine=ENGINE, observed_value=sorted(names), details=details)


def _padded(expected: list[str], found: list[str]) -> list[tuple[str | None, str | None]]:
    width = max(len(expected), len(found))
    return [(expected[i] if i < len(expected) else None, found[i] if i < len(found) else None) for i in range(width)]


def _missing(table: Table, column: str) -> str:
    return f"{table.value(column)} IS NULL"


def _keep_rows(table: Table, columns: list[str], ignore_row_if: str) -> str:
    """GE's `ignore_row_if` for pair and multicolumn rules, as a SQL filter on the rows kept."""
    missing = [_missing(table, c) for c in columns]
    if ignore_row_if in ("both_values_are_missing", "all_values_are_missing"):
        return f"NOT ({' AND '.join(missing)})"
    if ignore_row_if in ("either_value_is_missing", "any_value_is_missing"):
        return f"NOT ({' OR '.join(missing)})"
    return "TRUE"


def _column_pair(rule: QualityRule, table: Table, query: Query) -> Finish | None:
    a, b = rule.kwargs["column_A"], rule.kwargs["column_B"]
    if table.columns[a] != table.columns[b] and not (table.is_numeric(a) and table.is_numeric(b)):
        return None
    keep = _keep_rows(table, [a, b], rule.kwargs.get("ignore_row_if", "both_values_are_missing"))
    operator = ">=" if rule.kwargs.get("or_equal") else ">"
    failing = f"{keep} AND NOT coalesce({table.value(a)} {operator} {table.value(b)}, FALSE)"
    total, kept = query.add("count(*)"), query.add(f"count(*) FILTER (WHERE {keep})")
    unexpected = query.add(f"count(*) FILTER (WHERE {failing})")
    pair = f"{{'A': {table.value(a)}, 'B': {table.value(b)}}}"
    return lambda row: _map_result(rule, row[total], row[kept], row[unexpected], lambda: _pairs(row.sample(pair, failing)))


def _pairs(found: list[dict[str, Any]]) -> list[list[Any]]:
    return [[item["A"], item["B"]] for item in found]


def _kept_rows(rule: QualityRule, table: Table, query: Query) -> tuple[list[str], str, str, str]:
    """A multicolumn rule's columns, the rows its `ignore_row_if` keeps, and the aliases counting all rows and those."""
    columns = list(rule.kwargs["column_list"])
    keep = _keep_rows(table, columns, rule.kwargs.get("ignore_row_if", "all_values_are_missing"))
    return columns, keep, query.add("count(*)"), query.add(f"count(*) FILTER (WHERE {keep})")


def _compound_unique(rule: QualityRule, table: Table, query: Query) -> Finish:
    """expect_compound_columns_to_be_unique"""
    columns, keep, _, kept = _kept_rows(rule, table, query)
    return _unique(rule, table, query, columns, keep, considered=kept)


def _multicolumn_sum(rule: QualityRule, table: Table, query: Query) -> Finish | None:
    """expect_multicolumn_sum_to_equal"""
    columns, keep, total, kept = _kept_rows(rule, table, query)
    if not all(table.is_numeric(c) for c in columns):
        return None
    row_sum = " + ".join(table.value(c) for c in columns)  # a missing value makes the sum missing, as in GE
    failing = f"{keep} AND NOT coalesce({row_sum} = {sql_value(rule.kwargs['sum_total'])}, FALSE)"
    unexpected = query.add(f"count(*) FILTER (WHERE {failing})")
    record = "{" + ", ".join(f"{literal(c)}: {table.value(c)}" for c in columns) + "}"
    return lambda row: _map_result(rule, row[total], row[kept], row[unexpected], lambda: row.sample(record, failing))


FAMILIES: dict[str, Callable[[QualityRule, Table, Query], Finish | None]] = {
    "column_map": _column_map,
    "column_statistic": _column_statistic,
    "distinct_values": _distinct_values,
    "column_type": _column_type,
    "row_count": _row_count,
    "column_list": _column_list,
    "column_set": _column_set,
    "column_pair": _column_pair,
    "compound_unique": _compound_unique,
    "multicolumn_sum": _multicolumn_sum,
}


def compile_rule(rule: QualityRule, table: Table, query: Query) -> Finish | None:
    """Add the rule's aggregates to `query`; None if this rule on this table needs GE."""
    signature = compiled_signature(rule.expect, rule.kwargs)
    if signature is None:
        return None
    referenced = [rule.kwargs.get(k) for k in signature.column_kwargs]
    flat = [n for item in referenced for n in ([item] if isinstance(item, str) else item or [])]
    if any(name not in table.columns for name in flat):
        return None
    return FAMILIES[signature.family](rule, table, query)
