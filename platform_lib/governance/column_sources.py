"""Which input columns each column of a SQL transform is computed from, as sqlglot reads the query.

With it the PII policy follows a column through a rename (`email AS contact`), which
a comparison of names misses. sqlglot is the parser dagster-dbt uses for dbt's column
lineage; given the inputs' contracts as the schema, it expands `*` and follows
columns through subqueries, common table expressions and `USING` joins.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from platform_lib.contract import Product


def _counts(expression) -> bool:
    """`count(...)`, filtered or over a window: it carries no input's values."""
    from sqlglot import exp

    while isinstance(expression, (exp.Window, exp.Filter)):
        expression = expression.this
    return isinstance(expression, exp.Count)


def _copied(node) -> bool:
    """A lineage node whose expression passes its column's values on as they are, perhaps
    cast, trimmed or case-folded: still the same person's e-mail address."""
    from sqlglot import exp

    expression = node.expression.unalias()
    while isinstance(expression, (exp.Cast, exp.Lower, exp.Upper, exp.Trim)):
        expression = expression.this
    return isinstance(expression, exp.Column)


def _schema(product: Product, inputs: Mapping[str, Product]) -> tuple[dict, dict[tuple[str, str], str]]:
    """The inputs' columns as sqlglot's schema, and which input each (schema, table) is."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    tables: dict[tuple[str, str], str] = {}
    for input_id, upstream in inputs.items():
        own = upstream.domain == product.domain  # then also `main.<product>`, the default schema
        for where in [upstream.domain, "main"] if own else [upstream.domain]:
            schema.setdefault(where, {})[upstream.name] = dict(upstream.column_types)
            tables[(where, upstream.name)] = input_id
    return schema, tables


def _qualified(product: Product, schema: dict):
    import sqlglot
    from sqlglot.optimizer.qualify import qualify

    return qualify(sqlglot.parse_one(product.sql, dialect="duckdb"), schema=schema, db="main", dialect="duckdb")


def unreadable_because(product: Product, inputs: Mapping[str, Product]) -> str | None:
    """Why sqlglot cannot read the product's SQL at all, in its words (a column the inputs
    lack, a typo: `Column 'countri' could not be resolved`), or None if it can."""
    try:
        _qualified(product, _schema(product, inputs)[0])
    except Exception as error:
        return re.sub(r"\x1b\[[0-9;]*m", "", str(error).splitlines()[0]).strip()
    return None


def sql_column_sources(
    product: Product, inputs: Mapping[str, Product], columns: Iterable[str], copies_only: bool = False
) -> dict[str, set[tuple[str, str]]] | None:
    """For each of `columns` of `product`'s SQL, the `(input id, column)` pairs it is computed
    from, or with `copies_only` those it copies (`_copied` at every step); None where sqlglot
    cannot follow the query (or DuckDB's dialect of it)."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    schema, tables = _schema(product, inputs)
    try:
        query = _qualified(product, schema)
        if query.find(exp.Columns, exp.TableColumn):  # COLUMNS(...), a whole row (`to_json(r)`): not traced, anywhere
            return None
        selects = {select.alias_or_name: select for select in query.selects}
        sources: dict[str, set[tuple[str, str]]] = {}
        for name in columns:
            if name not in selects:  # made by an expression sqlglot does not expand, e.g. COLUMNS('e.*')
                return None
            if _counts(selects[name].unalias()):
                sources[name] = set()
                continue
            if selects[name].unalias().find(exp.Star):  # `to_json(*)`, `struct_pack(*)`: columns it does not trace
                return None
            traced = lineage(name, query, schema=schema, db="main", dialect="duckdb")
            if copies_only and not all(_copied(node) for node in traced.walk() if node.downstream):
                sources[name] = set()
                continue
            sources[name] = {
                (tables[(leaf.source.db, leaf.source.name)], leaf.name.rsplit(".", 1)[-1].strip('"'))
                for leaf in traced.walk()
                if not leaf.downstream and isinstance(leaf.source, exp.Table) and (leaf.source.db, leaf.source.name) in tables
            }
            # a table alias with a column list (`AS r(id, x)`) renames columns: sqlglot reports the new names
            if any(column not in inputs[input_id].column_types for input_id, column in sources[name]):
                return None
        return sources
    except Exception:  # sqlglot's parser, optimizer or a dialect it reads otherwise: the caller decides
        return None
