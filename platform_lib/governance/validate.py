"""Running the policies: over the whole mesh (`mesh validate`) or one domain as it loads."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from platform_lib import output_port
from platform_lib.contract import ContractError, Domain, Product, load_domain, load_product
from platform_lib.dbt_project import source_file
from platform_lib.governance.policies import CONTRACT_POLICIES, MESH_POLICIES, Violation, check, shown_path
from platform_lib.mesh import LoadedDomain, products_by_id
from platform_lib.storage import published_dir


class PolicyError(RuntimeError):
    """A domain breaks global policies; the message has one line per violation."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = "\n".join(str(v) for v in violations)
        super().__init__(f"{len(violations)} policy violation{'s' if len(violations) > 1 else ''} (run `mesh validate`):\n{lines}")


def contract_violations(folder: Path, error: ContractError) -> list[Violation]:
    """A domain whose files do not load breaks the first policy of all: its contracts are valid."""
    return [
        Violation(shown_path(Path(error.file)), error.product or folder.name, "valid-contract", problem, f"fix field '{field}'" if field else "fix the file")
        for field, problem in error.problems
    ]


def validate_mesh(mesh: list[LoadedDomain]) -> list[Violation]:
    """Every violation of every policy in the mesh, sorted by file."""
    index = products_by_id(mesh)
    violations = [v for d in mesh if d.error for v in contract_violations(d.path, d.error)]
    products = [p for d in mesh for p in d.products]
    return sorted(violations + check(products, index.get, CONTRACT_POLICIES + MESH_POLICIES) + unknown_dbt_sources(mesh) + orphan_ports(mesh))


def unknown_dbt_sources(mesh: list[LoadedDomain]) -> list[Violation]:
    """A dbt model's source that names no product of the mesh (`mesh.input_errors` leaves
    these to the run, which fails the model's step: its domain still loads). An input of
    a domain that does not load is not called unknown."""
    index, broken = products_by_id(mesh), {d.path.name for d in mesh if d.error}
    return [
        Violation(
            str(source_file(product, input_id)),
            product.id,
            "valid-contract",
            f"dbt model {product.dbt_model} reads source {input_id}, which no domain of the mesh publishes",
            "fix the source: its `name` is the producing domain, its table's `name` the product",
        )
        for product in index.values()
        if product.transform == "dbt"
        for input_id in product.inputs
        if input_id not in index and input_id.split(".")[0] not in broken
    ]


def _versions(product_id: str) -> str:
    count = len(output_port.versions(product_id))
    return f"{count} version{'' if count == 1 else 's'}"


def orphan_ports(mesh: list[LoadedDomain]) -> list[Violation]:
    """The `orphan-port` policy: every output port has a product. A product removed from its
    domain, or renamed, leaves its port: files anyone may still read (an internal one's
    PII in clear), which no retention prunes any more. A domain that does not load is not
    judged: its contracts may well be there."""
    index, broken = products_by_id(mesh), {d.path.name for d in mesh if d.error}
    domains = sorted(p.name for p in published_dir().iterdir() if p.is_dir()) if published_dir().is_dir() else []
    return [
        Violation(
            str(output_port.port_dir(product_id)),
            product_id,
            "orphan-port",
            f"is served from its output port ({_versions(product_id)}) but no domain has its contract",
            "delete the port's folder once no one reads it, or bring its contract back",
        )
        for domain in domains
        if domain not in broken
        for product_id in output_port.ports_of(domain)
        if product_id not in index
    ]


def enforce_at_load(domain: Domain, products: list[Product]) -> None:
    """Raise PolicyError if the domain breaks a contract policy; read other domains only as needed.

    An input in a sibling domain that is missing or does not load is skipped here:
    that domain's own location and `mesh validate` report it.
    """
    root = domain.path.resolve().parent
    own = {p.id: p for p in products}

    @cache
    def lookup(product_id: str) -> Product | None:
        if product_id in own:
            return own[product_id]
        other, name = product_id.split(".", 1)
        try:
            return load_product(root / other / "products" / f"{name}.yaml", load_domain(root / other))
        except ContractError:
            return None

    violations = check(products, lookup, CONTRACT_POLICIES)
    if violations:
        raise PolicyError(violations)


def location_errors(mesh: list[LoadedDomain]) -> dict[str, ContractError | PolicyError]:
    """Per domain folder, why its code location does not load: its files, or the contract policies it breaks.

    `mesh materialize` refuses to build exactly these domains, with the error their
    location raises, so a run outside Dagster cannot publish what a location refuses.
    """
    errors: dict[str, ContractError | PolicyError] = {}
    for loaded in mesh:
        if loaded.error:
            errors[loaded.path.name] = loaded.error
            continue
        try:
            enforce_at_load(loaded.domain, list(loaded.products))
        except PolicyError as error:
            errors[loaded.path.name] = error
    return errors
