"""Self-serve: `mesh new-domain` and `mesh new-product` write a team's starting files.

A new domain is a copy of `templates/template_domain/`, itself a real domain (loaded and
materialized by the tests) whose name and owner are the placeholders below. A new
product is a contract skeleton that loads and passes the policies as written: a
SQL or pandas transform starts as a copy of its first input, so it runs before anyone
edits it; a dbt product loads once its model exists in the domain's dbt project.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from string import Template

import yaml

from platform_lib.columns import aligned
from platform_lib.contract import NAME, PRODUCT_ID, Product, domain_name_problem
from platform_lib.contract_schema import modeline
from platform_lib.mesh import domains_dir, load_mesh, products_by_id
from platform_lib.storage import sources_dir

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "template_domain"
TEMPLATE_OWNER = "team-template"
KINDS = ("ingest", "sql", "pandas", "dbt")
SIBLINGS = {"sql": ".sql", "pandas": ".py"}


class ScaffoldError(ValueError):
    """The command cannot create what was asked; the message says why."""


def workspace_file() -> Path:
    """The Dagster workspace, which sits beside the domains folder (the repository root)."""
    return domains_dir().parent / "workspace.yaml"


def workspace_entry(name: str, folder: Path) -> str:
    relative = folder.resolve().relative_to(workspace_file().parent).as_posix()
    return f"  - python_file: {{relative_path: {relative}/definitions.py, location_name: {name}, working_directory: .}}\n"


def new_domain(name: str, owner: str) -> list[str]:
    """Create the domain folder, its sample source file and its code location; return the next steps."""
    problem = domain_name_problem(name)
    if problem:
        raise ScaffoldError(problem)
    if not owner.strip():
        raise ScaffoldError("the domain needs an owner team, e.g. --owner team-shipping")
    target = domains_dir() / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists")
    workspace = workspace_file()
    if not workspace.exists():
        raise ScaffoldError(f"no {workspace.name} beside {domains_dir()}: run this in the repository")
    if f"location_name: {name}," in workspace.read_text(encoding="utf-8"):
        raise ScaffoldError(f"{workspace} already has a code location named {name}")

    shutil.copytree(TEMPLATES / TEMPLATE_NAME, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(modeline(path) + text.replace(TEMPLATE_NAME, name).replace(TEMPLATE_OWNER, owner), encoding="utf-8")
    with open(workspace, "a", encoding="utf-8") as handle:
        handle.write(workspace_entry(name, target))
    source = sources_dir() / name / "items.csv"
    if not source.exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEMPLATES / "sources" / "items.csv", source)
    return [
        f"created {target} with the example product {name}.items (products/items.yaml: delete it once your own products are there)"
        f" and its code location in {workspace.name}",
        f"sample source data for it: {source}",
        "next:",
        *aligned([
            [f"mesh materialize {name}", f"ingest, check and publish {name}.items"],
            [f"mesh new-product {name} NAME --kind ingest|sql|pandas|dbt", "add your own products"],
            ["mesh validate", "check the global policies"],
            ["make dev", "see the domain in the Dagster UI"],
            ["deploy/workspace.grpc.yaml, deploy/helm/values.yaml", f"give {name} its code server in production (make test checks)"],
        ], indent="  "),
    ]


def _flow(mapping: dict) -> str:
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _column_lines(product: Product) -> str:
    """The contract lines of a product's columns as its port serves them, which a transform reads."""
    lines = []
    for column in product.served_columns:
        fields = {"name": column.name, "type": column.type}
        if column.required:
            fields["required"] = True
        if column.pii:
            fields.update(pii=True, mask=column.mask or "redact")
        if column.description:
            fields["description"] = column.description
        lines.append(f"  - {_flow(fields)}")
    return "\n".join(lines)


def _render(template: str, **values: str) -> str:
    return Template((TEMPLATES / "product" / f"{template}.tmpl").read_text(encoding="utf-8")).substitute(values)


def new_product(domain: str, name: str, kind: str, inputs: list[str]) -> list[str]:
    """Write the contract skeleton (and its SQL or Python) of a new product; return what was written."""
    mesh = load_mesh()
    folder = next((d.path for d in mesh if d.path.name == domain), None)
    if folder is None:
        raise ScaffoldError(f"no domain {domain} in {domains_dir()}; create it with `mesh new-domain {domain} --owner TEAM`")
    if not NAME.match(name):
        raise ScaffoldError(f"'{name}' is not a product name: lower case letters, digits and underscores, starting with a letter")
    if kind not in KINDS:
        raise ScaffoldError(f"--kind must be one of {', '.join(KINDS)}")
    contract = folder / "products" / f"{name}.yaml"
    if contract.exists():
        raise ScaffoldError(f"{contract} already exists")
    product_id = f"{domain}.{name}"
    values = {"product_id": product_id, "name": name, "domain": domain, "kind": kind}
    written = {contract: ""}
    if kind in ("ingest", "dbt") and inputs:
        raise ScaffoldError(f"a {kind} product takes its inputs from its {'files' if kind == 'ingest' else 'dbt sources'}: drop --input")
    if kind == "ingest":
        written[contract] = _render("ingest.yaml", **values, source_path=f"{domain}/{name}*.csv")
    elif kind == "dbt":
        written[contract] = _render("dbt.yaml", **values, project=domain)
    else:
        if not inputs:
            raise ScaffoldError(f"a {kind} product reads other products: give at least one --input DOMAIN.PRODUCT")
        known = products_by_id(mesh)
        for input_id in inputs:
            if not PRODUCT_ID.match(input_id) or input_id not in known:
                raise ScaffoldError(f"--input {input_id}: no such product; `mesh catalog` lists them")
            if known[input_id].domain != domain and known[input_id].access != "public":
                raise ScaffoldError(f"--input {input_id}: an internal product of domain {known[input_id].domain}; "
                                    f"only its public products may be read from {domain}")
        first = known[inputs[0]]
        names = [c.name for c in first.columns]
        values.update(
            first_input=first.id,
            inputs=", ".join(inputs),
            primary_key=", ".join(first.primary_key),
            columns=_column_lines(first),
            column_list=", ".join(names),
            column_strings=", ".join(repr(n) for n in names),
        )
        written[contract] = _render("transform.yaml", **values)
        written[contract.with_suffix(SIBLINGS[kind])] = _render(kind + SIBLINGS[kind], **values)
    written[contract] = modeline(contract) + written[contract]  # editors find its JSON Schema
    for path, text in written.items():
        path.write_text(text, encoding="utf-8")
    steps = [f"wrote {path}" for path in written]
    if kind == "dbt":
        steps.append(f"write the model {name} in dbt_projects/{domain}/ and run `mesh prepare-dbt` (docs/dbt.md)")
    return steps + [f"next: edit the contract, then `mesh validate` and `mesh materialize {domain}`"]
