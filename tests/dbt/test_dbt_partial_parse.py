"""The project as dbt parses and runs it: its product models built in memory, and the
partial-parse file from `mesh prepare-dbt` good in every data folder, so a data
folder's first run does not parse the project in full."""

from __future__ import annotations

import json
import shutil
import subprocess

import yaml

from platform_lib import dbt_project
from platform_lib.dbt_project import PARTIAL_PARSE, DbtProjectRef, dbt_executable, dbt_product_models
from platform_lib.mesh import domains_dir

from tests.dbt.dbt_helpers import copy_dbt_project


def parse_events(project: DbtProjectRef) -> set[str]:
    """The names of the events of `dbt parse` in the project's mirror, started from the prepared partial-parse file."""
    mirror = project.link_mirror()
    target = project.profiles_dir / "runs" / "parse"
    target.mkdir(parents=True)
    shutil.copy(project.partial_parse_seed, target / PARTIAL_PARSE)
    done = subprocess.run(
        [dbt_executable(), "parse", "--log-format", "json", "--log-level", "debug", "--profiles-dir", str(project.write_profile()),
         "--profile", dbt_project.PROFILE, "--target", dbt_project.PROFILE, "--target-path", str(target)],
        cwd=mirror, capture_output=True, text=True, env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {json.loads(line)["info"]["name"] for line in done.stdout.splitlines() if line.startswith("{")}


def test_a_new_data_folder_starts_from_the_prepared_partial_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(copy_dbt_project(tmp_path)))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "prepared"))
    project = DbtProjectRef("orders", "orders", dbt_product_models(domains_dir() / "orders")["orders"])
    dbt_project.prepare(project)
    prepared_profile = (project.profiles_dir / "profiles.yml").read_text()

    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "elsewhere"))
    events = parse_events(project)
    assert (project.profiles_dir / "profiles.yml").read_text() == prepared_profile
    assert "PartialParsingEnabled" in events and "UnableToPartialParse" not in events
    assert (project.mirror_dir / "models").readlink() == project.path / "models"
    assert dbt_project.load_manifest(project)["nodes"]["model.orders.order_lines"]["database"] == dbt_project.CANDIDATE_CATALOG


def test_a_file_moved_in_or_out_makes_the_manifest_stale(tmp_path, monkeypatch):
    """`mv` keeps a file's time, so a renamed or added model is not newer than the manifest."""
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(copy_dbt_project(tmp_path)))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "mesh"))
    project = DbtProjectRef("orders", "orders")
    old = tmp_path / "order_lines_copy.sql"
    shutil.copy2(project.path / "models" / "order_lines.sql", old)  # as old as the project's files
    dbt_project.prepare(project)
    assert not project.is_stale()
    old.rename(project.path / "models" / "order_lines_copy.sql")
    assert project.is_stale()
    dbt_project.load_manifest(project)
    assert "model.orders.order_lines_copy" in dbt_project.load_manifest(project)["nodes"] and not project.is_stale()
    (project.path / "models" / "order_lines_copy.sql").rename(tmp_path / "order_lines_copy.sql")
    assert project.is_stale()


def test_a_model_becoming_a_product_makes_the_manifest_stale(tmp_path, monkeypatch):
    """A product model is built in memory, which the project as dbt runs it says: so must the manifest."""
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(copy_dbt_project(tmp_path)))
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "mesh"))
    dbt_project.prepare(DbtProjectRef("orders", "orders"))
    assert dbt_project.load_manifest(DbtProjectRef("orders", "orders"))["nodes"]["model.orders.order_lines"]["database"] == "orders"
    project = DbtProjectRef("orders", "orders", ("order_lines",))
    assert project.is_stale()
    assert dbt_project.load_manifest(project)["nodes"]["model.orders.order_lines"]["database"] == dbt_project.CANDIDATE_CATALOG
    assert not project.is_stale()


def test_the_project_as_dbt_runs_it_builds_each_product_model_in_memory(tmp_path, monkeypatch):
    """dbt_project.yml configures a model by its folders under its model path: there goes `+database`."""
    monkeypatch.setenv("MESH_DBT_PROJECTS_DIR", str(tmp_path))
    (tmp_path / "p" / "transforms" / "marts").mkdir(parents=True)
    (tmp_path / "p" / "transforms" / "marts" / "x.sql").write_text("select 1 as a\n")
    (tmp_path / "p" / "transforms" / "y.sql").write_text("select 1 as a\n")
    (tmp_path / "p" / "dbt_project.yml").write_text("name: p\nmodel-paths: [transforms]\nmodels:\n  p:\n    +materialized: table\n")
    document = yaml.safe_load(DbtProjectRef("p", "d", ("missing", "x")).project_file())
    assert document["models"] == {"p": {"+materialized": "table", "marts": {"x": {"+database": dbt_project.CANDIDATE_CATALOG}}}}
    assert DbtProjectRef("p", "d").project_file() == (tmp_path / "p" / "dbt_project.yml").read_text()
