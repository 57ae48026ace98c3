"""The JSON Schemas editors read take every contract the mesh loads, and flag what the loader refuses by its shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from platform_lib.cli import main
from platform_lib.contract_schema import FOLDER, reference, render, schemas
from platform_lib.mesh import domains_dir
from platform_lib.scaffold import TEMPLATE_NAME, TEMPLATES
from platform_lib.storage import REPO_ROOT

SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=(\S+)\n")


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((FOLDER / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, document: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(document)]


def first_problem(name: str, document: dict) -> str:
    """What an editor underlines: the most relevant error, inside an optional section's schema."""
    error = best_match(validator(name).iter_errors(document))
    return f"{'.'.join(map(str, error.absolute_path))}: {error.message}"


def test_the_committed_schemas_and_reference_are_those_the_contract_model_gives():
    for name, schema in schemas().items():
        assert (FOLDER / name).read_text(encoding="utf-8") == render(schema), f"docs/schema/{name} is out of date: run `make schema`"
    assert (REPO_ROOT / "docs" / "contract.md").read_text(encoding="utf-8") == reference(), "docs/contract.md is out of date: run `make schema`"


def test_the_reference_has_every_field_of_every_section():
    text = reference()
    for schema in [*schemas().values(), *schemas()["product.schema.json"]["$defs"].values()]:
        for name, prop in schema["properties"].items():
            assert f"| `{name}` |" in text and " ".join(prop.get("description", "").split()) in text, name


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "domains").glob("*/products/*.yaml")) + sorted((TEMPLATES / TEMPLATE_NAME).rglob("products/*.yaml")),
                         ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_contract_of_the_mesh_and_its_template_is_valid_by_the_schema(path: Path):
    """Every contract under the repository's domains/, a fork's own too: an editor checks them all by the schema."""
    assert problems("product.schema.json", yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_every_domain_file_is_valid_by_the_schema():
    """The repository's domains, a fork's own too, as above."""
    for path in [*sorted((REPO_ROOT / "domains").glob("*/domain.yaml")), TEMPLATES / TEMPLATE_NAME / "domain.yaml"]:
        assert problems("domain.schema.json", yaml.safe_load(path.read_text(encoding="utf-8"))) == [], path


@pytest.mark.parametrize(
    "change, problem",
    [
        (("primary_key:", "primary_keys:"), ": Additional properties are not allowed ('primary_keys' was unexpected)"),
        (("tier: bronze", "tier: bronze\naccess: open"), "access: 'open' is not one of ['public', 'internal']"),
        (("format: json", "format: xml"), "source.format: 'xml' is not one of ['csv', 'parquet', 'json']"),
        (("{name: order_id, type: BIGINT, required: true}", "{name: order_id, type: BIGINT, required: yes please}"),
         "columns.0.required: 'yes please' is not of type 'boolean'"),
        (("max_bad_fraction: 0.001", "max_bad_fraction: 2"), "source.max_bad_fraction: 2 is greater than the maximum of 1"),
        (("max_bad_fraction: 0.001", "max_bad_fraction: 0.001, quote: none"), "source.quote: 'none' is not one of ['\"', \"'\", '']"),
    ],
)
def test_the_schema_flags_a_misspelt_field_and_a_value_out_of_its_choices(change, problem):
    text = (domains_dir() / "orders" / "products" / "raw_order_lines.yaml").read_text(encoding="utf-8")
    assert change[0] in text
    document = yaml.safe_load(text.replace(*change))
    assert first_problem("product.schema.json", document) == problem


def test_contracts_name_their_schema_in_their_first_line(domains_copy, capsys):
    """Those under the repository's domains/, a fork's own too, and those `mesh new-domain` and `new-product` write."""
    for path in [*(REPO_ROOT / "domains").glob("*/products/*.yaml"), *(REPO_ROOT / "domains").glob("*/domain.yaml")]:
        line = SCHEMA_LINE.match(path.read_text(encoding="utf-8"))
        assert line and (path.parent / line[1]).resolve() == FOLDER / f"{'domain' if path.name == 'domain.yaml' else 'product'}.schema.json", path
    assert main(["new-domain", "shipping", "--owner", "team-shipping"]) == 0
    assert main(["new-product", "shipping", "parcels", "--kind", "ingest"]) == 0
    for path in [domains_copy / "shipping" / "domain.yaml", *(domains_copy / "shipping" / "products").glob("*.yaml")]:
        line = SCHEMA_LINE.match(path.read_text(encoding="utf-8"))
        assert line and (path.parent / line[1]).resolve().parent == FOLDER, path
