"""The mesh's global policies, as code.

A policy is a function from one product (plus a way to look up the products it
reads) to violations. `mesh validate` runs every policy over every domain; a code
location runs the same functions over its own products when it loads, so a domain
that breaks a rule fails its own location with the same lines `mesh validate` prints.

Each violation says which rule, where, and what to change, on one line:

    public-contract customers.customer_profiles domains/customers/products/customer_profiles.yaml: \
declares no freshness SLO; add `freshness: {fail_after: 24h}`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from platform_lib import output_port
from platform_lib.contract import Product
from platform_lib.governance.column_sources import sql_column_sources, unreadable_because

Lookup = Callable[[str], "Product | None"]


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    product: str
    policy: str
    problem: str
    fix: str

    @property
    def domain(self) -> str:
        return self.product.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.policy} {self.product} {self.file}: {self.problem}; {self.fix}"


def shown_path(path: Path) -> str:
    """The contract's path as the team sees it in the repository: from `domains/` on."""
    parts = path.parts
    if "domains" not in parts:
        return str(path)
    last = len(parts) - 1 - parts[::-1].index("domains")
    return str(Path(*parts[last:]))


def _violation(policy: str, product: Product, problem: str, fix: str) -> Violation:
    return Violation(shown_path(product.path), product.id, policy, problem, fix)


def owner(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """Every product has an owner team that answers for it."""
    if not product.owner.strip():
        yield _violation("owner", product, "has no owner team", "set `owner: team-<name>` in the contract or in domain.yaml")


def description(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """Every product says what it is, for the people who find it in the catalog."""
    if not product.description.strip():
        yield _violation("description", product, "has an empty description", "write one sentence on what a row is in `description`")


def public_contract(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """A public product is a promise to other domains: it states its key and its freshness SLO."""
    if product.access != "public":
        return
    if not product.primary_key:
        yield _violation("public-contract", product, "is public but declares no primary_key", "add `primary_key: [<key columns>]`")
    if product.freshness is None:
        yield _violation(
            "public-contract", product, "is public but declares no freshness SLO", "add `freshness: {fail_after: 24h}` (or its real SLO)"
        )


def public_blocking_check(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """A public product has at least one blocking quality rule of its own, beyond the schema check."""
    if product.access == "public" and not any(rule.blocking for rule in product.quality):
        yield _violation(
            "public-blocking-check",
            product,
            "is public but has no blocking quality rule",
            "add a rule under `quality:` with the default `severity: error`",
        )


def retention(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """Every product chooses how many published snapshots it keeps, rather than inheriting a default."""
    if "retention" not in product.model_fields_set:
        yield _violation("retention", product, "does not declare its retention", "add `retention: {snapshots: <how many to keep>}`")


def cross_domain_access(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """Another domain may read only `public` products; internal ones stay inside their domain."""
    for input_id in product.inputs:
        upstream = lookup(input_id)
        if upstream and upstream.domain != product.domain and upstream.access != "public":
            yield _violation(
                "cross-domain-access",
                product,
                f"reads {input_id}, an internal product of domain {upstream.domain}",
                f"remove {'its source() from the dbt model' if product.transform == 'dbt' else 'it from `inputs`'}, "
                f"or ask {upstream.owner} to make it `access: public`",
            )


def pii_masked(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """PII leaves its domain only masked, and the contract says how; a key is hashed, not emptied."""
    for column in product.masked_columns:
        if column.mask is None:
            yield _violation(
                "pii-masked",
                product,
                f"is public and its PII column {column.name} declares no mask",
                f"add `mask: hash` (joinable) or `mask: redact` (NULL) to column {column.name}",
            )
        elif column.mask == "redact" and column.name in product.primary_key:
            yield _violation(
                "pii-masked",
                product,
                f"is public and redacts {column.name}, a column of its primary key: consumers would read NULL keys",
                f"use `mask: hash` on column {column.name}: hashed keys stay unique and joinable",
            )


def pii_inherited(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """A column that carries an input's PII column is PII too: under the same name, or, in a
    SQL transform, computed from it under any name. A public product whose columns cannot be
    followed to its inputs (a pandas or dbt transform, SQL sqlglot does not read) says of
    each column whether it holds PII. `pii: false`, written out, is a team's reviewed word
    that a column holds none (`email IS NOT NULL AS has_email`), but not of a SQL column
    that copies a PII column (`full_name AS contact`, `lower(email)`)."""
    inputs = {i: upstream for i in product.inputs if (upstream := lookup(i))}
    personal = {(i, c.name) for i, upstream in inputs.items() for c in upstream.pii_columns}
    unmarked = [c.name for c in product.columns if "pii" not in c.model_fields_set]
    said_not = [c.name for c in product.columns if "pii" in c.model_fields_set and not c.pii]
    if not personal:
        return
    copies = (sql_column_sources(product, inputs, unmarked + said_not, copies_only=True) or {}) if product.transform == "sql" else {}
    copied = {name: found for name, pairs in copies.items() if (found := sorted(f"{i}.{c}" for i, c in pairs if (i, c) in personal))}
    for name in (n for n in said_not if n in copied):
        yield _violation(
            "pii-inherited",
            product,
            f"column {name} says `pii: false` but copies PII column {copied[name][0]}",
            f"mark column {name} `pii: true` (with a `mask:`), or compute from it what holds no personal data",
        )
    if not unmarked:
        return
    computed = sql_column_sources(product, inputs, unmarked) if product.transform == "sql" else None
    if computed is None and product.access == "public":
        how = "SQL whose columns cannot be" if product.transform == "sql" else f"a {product.transform} transform, whose columns are not"
        unread = unreadable_because(product, inputs) if product.transform == "sql" else None  # a typo, often
        yield _violation(
            "pii-inherited",
            product,
            f"reads PII ({', '.join(sorted(f'{i}.{c}' for i, c in personal))}) in {how} followed to their inputs"
            + (f" (sqlglot: {unread})" if unread else ""),
            ("if that is a mistake in the SQL, fix it; else " if unread else "")
            + f"say of each column whether it holds PII: `pii: true` (with a `mask:`) or `pii: false` ({', '.join(unmarked)})",
        )
        return
    for name in unmarked:
        named = sorted(f"{i}.{c}" for i, c in personal if c == name)
        from_sql = sorted(f"{i}.{c}" for i, c in (computed or {}).get(name, ()) if (i, c) in personal)
        if named or from_sql:
            yield _violation(
                "pii-inherited",
                product,
                f"column {name} comes from PII column {(from_sql or named)[0]} but is not marked PII",
                f"mark column {name} `pii: true` (with a `mask:`)" + ("" if name in copied else ", or `pii: false` if it holds no personal data"),
            )


def retention_applied(product: Product, lookup: Lookup) -> Iterator[Violation]:
    """The output port holds no snapshot the contract's retention would have deleted."""
    overdue = output_port.expired(product.id, product.retention.snapshots, product.retention.grace_period)
    if overdue:
        kept = len(output_port.versions(product.id))
        yield _violation(
            "retention-applied",
            product,
            f"keeps {kept} published snapshots, {len(overdue)} of them beyond its retention of "
            f"{product.retention.snapshots} and replaced more than {product.retention.grace} ago",
            "materialize it once to prune, or raise `retention.snapshots`",
        )


Policy = Callable[[Product, Lookup], Iterable[Violation]]

# Policies a code location can afford to run when it loads: they read only contracts.
CONTRACT_POLICIES: tuple[Policy, ...] = (
    owner,
    description,
    public_contract,
    public_blocking_check,
    retention,
    cross_domain_access,
    pii_masked,
    pii_inherited,
)
# Policies that look at published data. (Unknown inputs and cycles across domains are
# contract errors: `platform_lib.mesh.load_mesh` reports them as `valid-contract`.)
MESH_POLICIES: tuple[Policy, ...] = (retention_applied,)


def check(products: Iterable[Product], lookup: Lookup, policies: Iterable[Policy]) -> list[Violation]:
    policies = tuple(policies)
    return sorted(v for product in products for policy in policies for v in policy(product, lookup))
