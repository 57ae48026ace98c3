"""JSON Schemas of a product contract and of domain.yaml, for editors, and the reference for readers.

An editor that reads the schemas (VS Code's YAML extension, JetBrains IDEs) completes
field names and values, shows each field's description, and flags a misspelt field or a
value out of its choices while a team writes a contract. The contract files name them
in their first line (`# yaml-language-server: $schema=...`). `docs/contract.md` shows the
same fields as tables.

Both are made from the contract model (`contract.py`: its fields' types and docstrings),
so they say what loading a contract checks, less what only code can check (a cron
expression, a DuckDB type, an expectation's arguments): `mesh validate` has the last word.
`make schema` writes them to `docs/`; a test fails when those are out of date. The
docstrings are read from the source here: pydantic's `use_attribute_docstrings` would
read it at every import of the contract model (25 ms of every run and code location).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from platform_lib import contract
from platform_lib.contract import Domain, Product
from platform_lib.storage import REPO_ROOT

FOLDER = REPO_ROOT / "docs" / "schema"


def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstrings of the model's fields: the string right below each annotated field."""
    body = ast.parse(textwrap.dedent(inspect.getsource(model))).body[0].body
    return {
        field.target.id: inspect.cleandoc(doc.value.value)
        for field, doc in zip(body, body[1:])
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
        and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)
    }


def _describe(schema: dict[str, Any], model: type[BaseModel]) -> None:
    for name, doc in _field_docs(model).items():
        if name in schema["properties"]:
            schema["properties"][name]["description"] = doc


def _schema(model: type[BaseModel], title: str, filled: tuple[str, ...], defaulted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The model's JSON Schema, its fields described by their docstrings, without the fields
    the loader fills from the file's place (`filled`); those it gives a default (`defaulted`)
    are not required."""
    schema = model.model_json_schema()
    _describe(schema, model)
    for name, definition in schema.get("$defs", {}).items():
        _describe(definition, getattr(contract, name))
    for name in filled:
        del schema["properties"][name]
    schema["required"] = [name for name in schema["required"] if name not in filled + defaulted]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema."""
    return {
        "product.schema.json": _schema(
            Product, "mesh data product contract (domains/<domain>/products/<name>.yaml)", ("domain", "name", "path"), ("owner",)
        ),
        "domain.schema.json": _schema(Domain, "mesh domain (domains/<domain>/domain.yaml)", ("path",)),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _choice(prop: dict[str, Any]) -> dict[str, Any]:
    """The schema of a property's value, an optional one's without its `null`."""
    return next(option for option in prop.get("anyOf", [prop]) if option.get("type") != "null")


def _section(prop: dict[str, Any]) -> str | None:
    """The name of the definition a property (or its list's items) is, if it is one."""
    value = _choice(prop)
    ref = value.get("$ref") or value.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[1] if ref else None


def _kind(prop: dict[str, Any], sections: dict[str, str]) -> str:
    """A property's value as a reader says it: text, a number, one of its choices, a list, a section."""
    value = _choice(prop)
    if "$ref" in value:
        return f"[{sections[_section(prop)]}](#{sections[_section(prop)].strip('`[]:').lower()})"
    if "enum" in value:
        return " or ".join(f"`{choice}`" if choice.strip() else "a space" if choice else "`''`" for choice in value["enum"])
    if value.get("type") == "array":
        return f"list of {_kind(value['items'], sections)}"
    return {"string": "text", "number": "number", "integer": "whole number", "boolean": "`true` or `false`"}[value["type"]]


def _default(name: str, prop: dict[str, Any], required: list[str]) -> str:
    if name in required:
        return "required"
    if "default" not in prop or prop["default"] in (None, [], ""):
        return ""
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _table(schema: dict[str, Any], sections: dict[str, str]) -> list[str]:
    rows = ["| field | value | default | what |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        cells = [f"`{name}`", _kind(prop, sections), _default(name, prop, schema.get("required", [])), " ".join(prop.get("description", "").split())]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if schema.get("additionalProperties") is True:
        rows.append("| ... | | | the expectation's own arguments (`column`, `min_value`, ...), as Great Expectations documents them |")
    return rows


def reference() -> str:
    """The contract's fields as Markdown tables, one per section, from the same schemas."""
    product, domain = schemas()["product.schema.json"], schemas()["domain.schema.json"]
    definitions = product["$defs"]
    sections = {
        section: f"`{name}[]`" if _choice(prop).get("type") == "array" else f"`{name}:`"
        for name, prop in product["properties"].items() if (section := _section(prop))
    }
    lines = [
        "# Contract reference",
        "",
        "Made from `platform_lib/contract.py` by `make schema`, with the JSON Schemas editors read",
        "(`docs/schema/`); a test fails when this file is out of date. `mesh validate` checks",
        "more than a table can say: a cron expression, a DuckDB type, an expectation's arguments,",
        "and the global policies ([governance.md](governance.md)).",
        "",
        "## A product: `domains/<domain>/products/<name>.yaml`",
        "",
        *_table(product, sections),
    ]
    for section, heading in sections.items():
        definition = definitions[section]
        lines += ["", f"### {heading}", ""]
        if definition.get("description"):
            lines += [" ".join(definition["description"].split("\n\n")[0].split()), ""]
        lines += _table(definition, sections)
    lines += ["", "## A domain: `domains/<domain>/domain.yaml`", "", *_table(domain, sections)]
    return "\n".join(lines) + "\n"


def modeline(path: Path) -> str:
    """The first line of a domain.yaml or a contract that points editors at its schema, relative to the file."""
    schema = FOLDER / ("domain.schema.json" if path.name == "domain.yaml" else "product.schema.json")
    return f"# yaml-language-server: $schema={Path(os.path.relpath(schema, path.parent)).as_posix()}\n"


def write() -> list[Path]:
    """The schemas in docs/schema/ and the reference beside them, docs/contract.md."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    written = {FOLDER / name: render(schema) for name, schema in schemas().items()} | {FOLDER.parent / "contract.md": reference()}
    for path, text in written.items():
        path.write_text(text, encoding="utf-8")
    return list(written)


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")
