"""What `mesh materialize` builds, from the domains and products it names.

    orders                    every product of the domain
    orders.order_lines        the product alone, on its inputs' published versions
    +marketing.segment_revenue   the product and everything upstream of it
    customers.raw_customers+  the product and everything downstream, in every domain

A `+` works on a domain as on a product (`orders+`), as dbt's selectors do on models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from platform_lib.mesh import LoadedDomain, input_graph, products_by_id


@dataclass(frozen=True)
class Selection:
    domains: frozenset[str]
    """The domains named, or whose products are named: `mesh materialize` reports those that do not load."""
    products: frozenset[str]
    """The ids of the products to build."""


def unknown(mesh: list[LoadedDomain], names: list[str]) -> list[str]:
    """The names the mesh has no domain or product for. A product of a domain that does
    not load is not unknown: the domain's error is reported."""
    domains = {d.path.name: d for d in mesh}

    def known(name: str) -> bool:
        domain = domains.get(name.split(".")[0])
        return domain is not None and ("." not in name or domain.error is not None or any(p.id == name for p in domain.products))

    return sorted(name for name in names if not known(name.strip("+")))


def select(mesh: list[LoadedDomain], names: list[str]) -> Selection:
    """What `names` select; none selects the whole mesh."""
    products = products_by_id(mesh)
    if not names:
        return Selection(frozenset(d.path.name for d in mesh), frozenset(products))
    inputs = input_graph(products)
    consumers: dict[str, list[str]] = {i: [] for i in products}
    for product_id, read in inputs.items():
        for input_id in read:
            consumers[input_id].append(product_id)
    domains, chosen = set(), set()
    for name in names:
        bare = name.strip("+")
        domains.add(bare.split(".")[0])
        named = {bare} & set(products) if "." in bare else {i for i, p in products.items() if p.domain == bare}
        chosen |= named
        if name.startswith("+"):
            chosen |= _reachable(named, inputs)
        if name.endswith("+"):
            chosen |= _reachable(named, consumers)
    return Selection(frozenset(domains), frozenset(chosen))


def _reachable(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        item = todo.pop()
        if item not in seen:
            seen.add(item)
            todo.extend(edges.get(item, ()))
    return seen
