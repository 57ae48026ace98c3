"""Which input columns each column of a SQL transform is computed from, as sqlglot reads the query.

With it the PII policy follows a column through a rename (`email AS contact`), which
a comparison of names misses. sqlglot is the parser dagster-dbt uses for dbt's column
lineage; given the inputs' contracts as the schema, it expands `*` and follows
columns through subqueries and common table expressions.
"""

from __future__ import annotations

from typing import Mapping

from platform_lib.contract import Product


def sql_column_sources(product: Product, inputs: Mapping[str, Product]) -> dict[str, set[tuple[str, str]]] | None:
    """Per column of `product`'s SQL, the `(input id, column)` pairs it is computed from;
    None where sqlglot cannot follow the query. A `count(...)` carries no input's values."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify

    schema: dict[str, dict[str, dict[str, str]]] = {}
    tables: dict[tuple[str, str], str] = {}
    for input_id, upstream in inputs.items():
        own = upstream.domain == product.domain  # then also `main.<product>` in the domain's file
        for where in [upstream.domain, "main"] if own else [upstream.domain]:
            schema.setdefault(where, {})[upstream.name] = dict(upstream.column_types)
            tables[(where, upstream.name)] = input_id
    try:
        query = qualify(sqlglot.parse_one(product.sql, dialect="duckdb"), schema=schema, dialect="duckdb")
        sources: dict[str, set[tuple[str, str]]] = {}
        for select in query.selects:
            name = select.alias_or_name
            if isinstance(select.unalias(), exp.Count):
                sources[name] = set()
                continue
            leaves = [n for n in lineage(name, query, schema=schema, dialect="duckdb").walk() if not n.downstream]
            sources[name] = {
                (tables[(leaf.source.db, leaf.source.name)], leaf.name.rsplit(".", 1)[-1].strip('"'))
                for leaf in leaves
                if isinstance(leaf.source, exp.Table) and (leaf.source.db, leaf.source.name) in tables
            }
        return sources
    except (SqlglotError, ValueError, KeyError):
        return None
