"""Quality: the asset checks every contract yields, evaluated on the candidate.

Each product gets a `schema` check (columns, types, nullability), a `primary_key`
check (unique and not null) when it declares a key, a `row_count` check against the
served version when it declares a `max_row_drop`, and one check per quality rule.
Error severity is blocking: a failure keeps the candidate from being published.

Check results are shown in the Dagster UI, which reaches further than the domain: a
check on a PII column reports counts, never the values it found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import dagster as dg
import duckdb

from platform_lib.contract import Product
from platform_lib.quality import RuleResult, bitmap, evaluate_rules
from platform_lib.storage import column_types, quote

EXAMPLES_SHOWN = 10  # of duplicated keys and unexpected values, in a check's metadata


def asset_key(product_id: str) -> dg.AssetKey:
    return dg.AssetKey(product_id.split("."))


def check_specs(product: Product) -> list[dg.AssetCheckSpec]:
    key = asset_key(product.id)
    specs = [dg.AssetCheckSpec("schema", asset=key, blocking=True, description="Columns, types and nullability match the contract.")]
    if product.primary_key:
        specs.append(
            dg.AssetCheckSpec(
                "primary_key", asset=key, blocking=True, description=f"({', '.join(product.primary_key)}) is unique and never null."
            )
        )
    if product.max_row_drop is not None:
        specs.append(
            dg.AssetCheckSpec(
                "row_count", asset=key, blocking=True,
                description=f"At most {product.max_row_drop:.0%} fewer rows than the version consumers read.",
            )
        )
    for rule in product.quality:
        specs.append(
            dg.AssetCheckSpec(
                rule.check_name,
                asset=key,
                blocking=rule.blocking,
                description=f"{rule.expect} {rule.kwargs} (severity {rule.severity})",
            )
        )
    return specs


def _result(product: Product, name: str, passed: bool, description: str, metadata: dict[str, Any], blocking: bool = True):
    return dg.AssetCheckResult(
        asset_key=asset_key(product.id),
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def schema_problems(
    connection: duckdb.DuckDBPyConnection, product: Product, relation: str, column_files: Mapping[str, str] | None = None
) -> tuple[list[str], list[str], dict[str, Any]]:
    """What breaks the contract's schema, notes, and metadata. Notes name the optional
    columns that are NULL in every row: not a breach, but what a source whose producer
    renamed a field looks like (a JSON reader reads the missing key as NULL on every line).
    A column some source files lack, or have where the contract does not name it, is said
    with those files (`ingest.IngestReport.column_files`)."""
    actual = column_types(connection, relation)
    missing = [c for c in product.column_types if c not in actual]
    extra = [c for c in actual if c not in product.column_types]
    mistyped = {c: f"{actual[c]} (contract: {t})" for c, t in product.column_types.items() if c in actual and actual[c] != t}
    present = [c for c in product.columns if c.name in actual]
    rows, *filled = connection.execute(f"SELECT count(*), {', '.join(f'count({quote(c.name)})' for c in present) or '0'} FROM {relation}").fetchone()
    nulls = {c.name: rows - n for c, n in zip(present, filled) if c.required and n < rows}
    empty = [c.name for c, n in zip(present, filled) if not c.required and rows and not n]
    where = {c: f" ({files})" for c, files in (column_files or {}).items()}
    problems = [f"missing column {c}{where.get(c, '')}" for c in missing]
    problems += [f"unexpected column {c}{where.get(c, '')}" for c in extra]
    problems += [f"column {c} has type {t}" for c, t in mistyped.items()]
    problems += [f"required column {c} has {n} null value{'s' if n > 1 else ''}{where.get(c, '')}" for c, n in nulls.items()]
    notes = [f"optional column {c} is NULL in every row{where.get(c, '')}" for c in empty]
    metadata = {
        "missing_columns": missing, "unexpected_columns": extra, "mistyped_columns": mistyped, "null_counts": nulls, "empty_columns": empty,
    }
    return problems, notes, metadata


def primary_key_problems(connection: duckdb.DuckDBPyConnection, product: Product, relation: str) -> tuple[list[str], dict[str, Any]]:
    """Null and duplicated keys. A key of dense integers is proven unique by a bitmap in one
    scan (quality/bitmap.py); only other keys, or one with duplicates, pay for the GROUP BY."""
    keys = ", ".join(quote(k) for k in product.primary_key)
    any_null = " OR ".join(f"{quote(k)} IS NULL" for k in product.primary_key)
    types = column_types(connection, relation)
    rows = connection.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    distinct = bitmap.distinct_keys(connection, relation, {k: types[k] for k in product.primary_key}, rows) or "NULL"
    null_rows, keyed_rows, distinct_keys = connection.execute(
        f"SELECT count(*) FILTER (WHERE {any_null}), count(*) FILTER (WHERE NOT ({any_null})), {distinct} FROM {relation}"
    ).fetchone()
    duplicates = [] if distinct_keys == keyed_rows else connection.execute(
        f"""SELECT {keys}, count(*) AS copies FROM {relation} WHERE NOT ({any_null})
        GROUP BY ALL HAVING count(*) > 1 ORDER BY copies DESC, {keys}"""
    ).fetchall()
    extra_rows = sum(row[-1] - 1 for row in duplicates)
    withheld = [c.name for c in product.pii_columns if c.name in product.primary_key]
    shown = not withheld
    sample = [dict(zip([*product.primary_key, "copies"], map(_plain, row))) for row in duplicates[:EXAMPLES_SHOWN]] if shown else []
    problems = []
    if null_rows:
        problems.append(f"{null_rows} row{'s' if null_rows > 1 else ''} with a null key")
    if duplicates:
        example = f", e.g. {sample[0]}" if shown else " (the key is PII: values not shown)"
        problems.append(f"{len(duplicates)} duplicated key value{'s' if len(duplicates) > 1 else ''} ({extra_rows} extra rows){example}")
    metadata = {"null_key_rows": null_rows, "duplicated_keys": len(duplicates), "duplicate_rows": extra_rows, "duplicate_sample": sample}
    if withheld:
        metadata["values_withheld"] = _withheld(withheld)
    return problems, metadata


def row_count_verdict(
    connection: duckdb.DuckDBPyConnection, product: Product, relation: str, served_rows: int | None
) -> tuple[bool, str, dict[str, Any]]:
    """Whether the candidate keeps enough of the served version's rows (`max_row_drop`): passed, what it found, metadata."""
    rows = connection.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    metadata: dict[str, Any] = {"rows": rows, "served_rows": served_rows}
    if served_rows is None:  # never published, or its record unreadable (`mesh status` says which)
        return True, f"{rows} rows, no served version to compare with", metadata
    drop = 1 - rows / served_rows if served_rows else 0.0
    metadata["drop"] = round(drop, 4)
    found = f"{rows} rows against {served_rows} served"
    if drop <= (product.max_row_drop or 0.0):
        return True, found, metadata
    return False, f"{found}: {drop:.2%} fewer, more than max_row_drop {product.max_row_drop} allows", metadata


def _withheld(columns: list[str]) -> str:
    return f"{', '.join(columns)} is PII: query the candidate in the domain's warehouse"


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _without_pii_values(result: RuleResult, pii: set[str]) -> RuleResult:
    """Counts only: GE's other fields may hold values too (a KL divergence's partition lists them),
    and of an exception, which may quote one, its kind."""
    if not pii.intersection(result.rule.columns):
        return result
    counts = {k: v for k, v in result.details.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "exception" in result.details:
        counts["exception"] = f"{str(result.details['exception']).split(':', 1)[0]} (the rest is withheld: the column is PII)"
    return dataclasses.replace(result, partial_unexpected_list=[], observed_value=None, details=counts)


def _rule_metadata(result: RuleResult, pii: set[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"engine": result.engine, "expectation": result.rule.expect, "kwargs": _json_safe(result.rule.kwargs)}
    withheld = sorted(pii.intersection(result.rule.columns))
    if withheld:
        metadata["values_withheld"] = _withheld(withheld)
    for field in ("element_count", "unexpected_count", "unexpected_percent", "observed_value"):
        value = getattr(result, field)
        if value is not None:
            metadata[field] = _json_safe(value)
    if result.partial_unexpected_list:
        metadata["unexpected_sample"] = _json_safe(result.examples[:EXAMPLES_SHOWN])
    metadata.update(_json_safe(result.details))
    return metadata


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    return _plain(value)


def run_checks(
    connection: duckdb.DuckDBPyConnection,
    product: Product,
    relation: str,
    column_files: Mapping[str, str] | None = None,
    served_rows: int | None = None,
) -> list[dg.AssetCheckResult]:
    """Evaluate every check of the contract on `relation`, the candidate table; `served_rows`
    are the rows of the version consumers read, if one is published."""
    problems, notes, metadata = schema_problems(connection, product, relation, column_files)
    results = [_result(product, "schema", not problems, "; ".join((problems or ["matches the contract"]) + notes), metadata)]
    missing = set(metadata["missing_columns"])

    def not_evaluated(columns: list[str]) -> str | None:
        lacking = [c for c in columns if c in missing]
        return f"not evaluated: the candidate lacks {', '.join(lacking)}" if lacking else None

    if product.primary_key and (reason := not_evaluated(list(product.primary_key))):
        results.append(_result(product, "primary_key", False, reason, {}))
    elif product.primary_key:
        key_problems, key_metadata = primary_key_problems(connection, product, relation)
        results.append(_result(product, "primary_key", not key_problems, "; ".join(key_problems) or "unique and not null", key_metadata))
    if product.max_row_drop is not None:
        results.append(_result(product, "row_count", *row_count_verdict(connection, product, relation, served_rows)))
    # A rule on a missing column cannot run, and would stop the query the others share.
    runnable = [r for r in product.quality if not not_evaluated(r.columns)]
    evaluated = iter(evaluate_rules(connection, relation, runnable) if runnable else ())
    pii = {c.name for c in product.pii_columns}
    for rule in product.quality:
        if reason := not_evaluated(rule.columns):
            results.append(_result(product, rule.check_name, False, reason, {}, rule.blocking))
            continue
        shown = _without_pii_values(next(evaluated), pii)
        results.append(_result(product, rule.check_name, shown.success, shown.summary, _rule_metadata(shown, pii), rule.blocking))
    return results
