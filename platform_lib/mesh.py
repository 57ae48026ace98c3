"""The whole mesh: every domain folder and its products, for tools that look across domains."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from platform_lib.contract import ContractError, Domain, Product, load_domain, load_products
from platform_lib.storage import REPO_ROOT


def domains_dir() -> Path:
    return Path(os.environ.get("MESH_DOMAINS_DIR") or REPO_ROOT / "domains").resolve()


@dataclass(frozen=True)
class LoadedDomain:
    domain: Domain | None
    products: tuple[Product, ...]
    error: ContractError | None
    path: Path


def load_mesh(root: Path | None = None) -> list[LoadedDomain]:
    """Every domain under `root`; a broken domain is reported, not raised, so others still load."""
    loaded = []
    for folder in sorted(p for p in (root or domains_dir()).iterdir() if (p / "domain.yaml").exists() or (p / "domain.yml").exists()):
        try:
            if not (folder / "domain.yaml").exists():
                raise ContractError(folder / "domain.yml", None, None, "a domain's file is domain.yaml: rename it")
            domain = load_domain(folder)
            loaded.append(LoadedDomain(domain, tuple(load_products(domain)), None, folder))
        except ContractError as error:
            loaded.append(LoadedDomain(None, (), error, folder))
    errors = input_errors(loaded)
    return [replace(d, products=(), error=errors[d.path.name]) if d.path.name in errors else d for d in loaded]


def input_errors(loaded: list[LoadedDomain]) -> dict[str, ContractError]:
    """Per domain folder, the first input that names no product, or that closes a dependency cycle.

    Neither shows inside one domain's folder: a domain only names other domains' products.
    An input of a domain that failed to load is not called unknown, so one broken domain
    does not break its consumers too. A dbt product's inputs are its project's sources:
    an unknown one fails the model's run and `mesh validate` (naming the sources file),
    and leaves the domain loading.
    """
    products = products_by_id(loaded)
    unloaded = {d.path.name for d in loaded if d.error}
    errors: dict[str, ContractError] = {}
    for product in products.values():
        for input_id in () if product.transform == "dbt" else product.inputs:
            if input_id not in products and input_id.split(".")[0] not in unloaded:
                problem = f"unknown product {input_id}: no domain of the mesh publishes it"
                errors.setdefault(product.path.parent.parent.name, ContractError(product.path, product.id, "inputs", problem))
    graph = input_graph(products)
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return errors
        except CycleError as cycle:
            path = cycle.args[1]
            for product_id in path[1:]:
                product = products[product_id]
                problem = f"inputs form a dependency cycle: {' -> '.join(path)}"
                errors.setdefault(product.path.parent.parent.name, ContractError(product.path, product.id, "inputs", problem))
                graph.pop(product_id, None)


def products_by_id(mesh: list[LoadedDomain]) -> dict[str, Product]:
    return {p.id: p for d in mesh for p in d.products}


def input_graph(products: Mapping[str, Product]) -> dict[str, list[str]]:
    """Each product's inputs among `products`, by id: those outside are another run's, or unknown."""
    return {product_id: [i for i in p.inputs if i in products] for product_id, p in products.items()}
