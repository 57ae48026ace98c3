"""JSON Schemas of a product contract and of domain.yaml, for editors.

An editor that reads them (VS Code's YAML extension, JetBrains IDEs) completes field
names and values, shows each field's description, and flags a misspelt field or a value
out of its choices while a team writes a contract. The contract files name them in their
first line (`# yaml-language-server: $schema=...`).

They are made from the contract model (`contract.py`: its fields' types and docstrings),
so they say what loading a contract checks, less what only code can check (a cron
expression, a DuckDB type, an expectation's arguments): `mesh validate` has the last word.
`make schema` writes them to `docs/schema/`; a test fails when those are out of date.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from platform_lib.contract import Domain, Product
from platform_lib.storage import REPO_ROOT

FOLDER = REPO_ROOT / "docs" / "schema"


def _schema(model: type[BaseModel], title: str, filled: tuple[str, ...], defaulted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The model's JSON Schema without the fields the loader fills from the file's place
    (`filled`); those it gives a default (`defaulted`) are not required."""
    schema = model.model_json_schema()
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


def modeline(contract: Path, schema: str = "product.schema.json") -> str:
    """The first line of a YAML file that points editors at its schema, relative to the file."""
    return f"# yaml-language-server: $schema={Path(os.path.relpath(FOLDER / schema, contract.parent)).as_posix()}\n"


def write(folder: Path = FOLDER) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        (folder / name).write_text(render(schema), encoding="utf-8")
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER):
        print(f"wrote {path}")
