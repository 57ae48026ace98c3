"""The whole mesh: every domain folder and its products, for tools that look across domains."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    for folder in sorted(p for p in (root or domains_dir()).iterdir() if (p / "domain.yaml").exists()):
        try:
            domain = load_domain(folder)
            loaded.append(LoadedDomain(domain, tuple(load_products(domain)), None, folder))
        except ContractError as error:
            loaded.append(LoadedDomain(None, (), error, folder))
    return loaded


def products_by_id(mesh: list[LoadedDomain]) -> dict[str, Product]:
    return {p.id: p for d in mesh for p in d.products}
