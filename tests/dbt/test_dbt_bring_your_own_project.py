"""docs/dbt.md, followed as a new user would: its files written, its commands run, the product published."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import yaml

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.dbt_project import CANDIDATE_CATALOG
from platform_lib.domain import domain_definitions
from platform_lib.storage import REPO_ROOT, literal

GUIDE = REPO_ROOT / "docs" / "dbt.md"
BLOCK = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```", re.S | re.M)


def guide_steps() -> list[tuple[str, str | None, str]]:
    """The guide's steps in order, from the section on bringing a project in: (language, file, text)."""
    section = GUIDE.read_text().split("## Bring your existing dbt project into the mesh", 1)[1].split("\n## ", 1)[0]
    return [match.groups() for match in BLOCK.finditer(section)]


def test_the_guide_brings_a_dbt_project_into_the_mesh(published_mesh, domains_copy, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    places = {"dbt_projects": published_mesh / "dbt_projects", "domains": domains_copy}

    def place(path: str) -> Path:
        top, rest = path.split("/", 1)
        return places[top] / rest if top in places else REPO_ROOT / path

    steps = guide_steps()
    assert [language for language, file, _ in steps if file] == ["yaml", "yaml", "yaml", "yaml", "python"]
    for language, file, text in steps:
        if file:
            place(file).parent.mkdir(parents=True, exist_ok=True)
            place(file).write_text(text)
        elif language == "console":
            for line in text.splitlines():
                command = shlex.split(line.removeprefix("$ "))
                if command[0] == "cp":
                    shutil.copytree(place(command[-2]), place(command[-1]))
                else:
                    assert command[0] == "mesh"
                    assert main(command[1:]) in (0, 1), capsys.readouterr()

    assert "dbt project returns (domain returns): parsed" in capsys.readouterr().out
    published = output_port.current("returns.returns_by_month")
    assert published is not None and published.inputs.keys() == {"orders.order_lines"}
    expected = f"""
        SELECT CAST(date_trunc('month', order_date) AS DATE) AS month, coalesce(segment, 'unknown') AS segment,
               count(*) AS returned_lines, sum(amount) AS returned_amount
        FROM read_parquet({literal(str(output_port.current("orders.order_lines").path))})
        WHERE status = 'returned' GROUP BY ALL"""
    actual = f"SELECT * FROM read_parquet({literal(str(published.path))})"
    assert duckdb.sql(f"SELECT count(*) FROM ({expected})").fetchone()[0] == published.rows > 0
    assert duckdb.sql(f"({expected}) EXCEPT ALL ({actual})").fetchall() == []

    graph = domain_definitions(domains_copy / "returns").resolve_asset_graph()
    product = graph.get(dg.AssetKey(["returns", "returns_by_month"]))
    assert product.owners == ["team:team-returns"] and product.group_name == "returns"
    assert dg.AssetKey(["returns", "stg_returned_lines"]) in product.parent_keys
    staging = graph.get(dg.AssetKey(["returns", "stg_returned_lines"]))
    assert staging.parent_keys == {dg.AssetKey(["orders", "order_lines"])} and staging.tags["access"] == "internal"
    assert output_port.current("returns.stg_returned_lines") is None
    nodes = json.loads((published_mesh / "dbt_projects" / "returns" / "target" / "manifest.json").read_text())["nodes"]
    assert nodes["model.returns.returns_by_month"]["database"] == CANDIDATE_CATALOG  # the product, built in memory
    assert nodes["model.returns.stg_returned_lines"]["database"] == "returns"  # the private model, in the domain's file
    workspace_line = next(text for language, file, text in guide_steps() if language == "yaml" and not file)
    assert yaml.safe_load(workspace_line)[0]["python_file"]["relative_path"] == "domains/returns/definitions.py"

