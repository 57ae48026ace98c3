"""dbt projects behind `transform: dbt` products: where they live, their manifest, their contracts.

    dbt_projects/<project>/          a dbt-duckdb project ($MESH_DBT_PROJECTS_DIR overrides the folder)
      target/manifest.json           parsed once, by `mesh prepare-dbt` (which `make` runs)
      target/mesh_parsed_files.txt   the project's files then: one added, removed or moved means parse again
      target/mesh_dbt_project.yml    dbt_project.yml as parsed then (`DbtProjectRef.project_file`)
      target/partial_parse.msgpack   dbt's parse state from then, where runs start from

A code location only reads the manifest JSON; it parses the project itself only when
the manifest is missing or older than a file of the project, i.e. once after an edit.
The platform, not the team, owns the dbt profile: dbt builds into the domain's own
DuckDB file, schema `_candidate`, so the team's `profiles.yml` plays no part. The models
that are products are built in memory instead (catalog `mesh_candidates`), where the dbt
step checks and publishes them without writing them to the file (`factories/dbt.py`).

Binding a product to its model is where dbt meets the mesh contract. The model must
enforce a dbt contract whose column names and types are the product contract's, a
public product must be a public model, and the product's inputs are the products its
dbt sources stand for (a source's asset key: `<source name>.<table name>` by default),
read by the model or through private models, and the project's product models it reads.
Any disagreement is a `ContractError` naming the project, the model and the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Collection, Iterator

import yaml

from platform_lib.contract import ContractError, Product
from platform_lib.storage import CANDIDATE_SCHEMA, REPO_ROOT, TIME_ZONE, data_dir, normalize_type, warehouse_path

PROFILE = "mesh"
CANDIDATE_CATALOG = "mesh_candidates"  # an in-memory database the dbt process attaches to the domain's file
IGNORED_FOLDERS = {"target", "logs", "dbt_packages", "__pycache__"}
MIRROR_SKIPS = {"target", "logs"}  # what dbt writes; a run writes them in the data folder
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's name for it
PARSED_FILES = "mesh_parsed_files.txt"
PARSED_PROJECT = "mesh_dbt_project.yml"
PROJECT_FILE = "dbt_project.yml"


def dbt_step(project: str) -> str:
    """The Dagster step of a dbt project: one multi-asset builds all its models (factories/dbt.py)."""
    return f"dbt_{project}"


def step_key(product: Product) -> str:
    """The Dagster step that builds a product: its dbt project's, or its own (its asset key joined by `__`)."""
    return dbt_step(product.dbt.project) if product.dbt else product.id.replace(".", "__")


def projects_dir() -> Path:
    return Path(os.environ.get("MESH_DBT_PROJECTS_DIR") or REPO_ROOT / "dbt_projects").resolve()


def dbt_executable() -> str:
    """The `dbt` installed beside this Python, so the venv's dbt runs whatever the PATH says."""
    return str(Path(sys.executable).with_name("dbt"))


@dataclass(frozen=True)
class DbtProjectRef:
    """One dbt project as built for one domain, whose models `product_models` are products."""

    name: str
    domain: str
    product_models: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, domain: str) -> DbtProjectRef:
        """The project as the mesh's domain folder makes it: its products those the domain's
        contracts name. The same for every load of the domain, a base checkout compared
        by `mesh contract-diff` included, so none parses the project again for another."""
        from platform_lib.mesh import domains_dir

        return cls(name, domain, dbt_product_models(domains_dir() / domain).get(name, ()))

    @property
    def path(self) -> Path:
        return projects_dir() / self.name

    @property
    def manifest_path(self) -> Path:
        return self.path / "target" / "manifest.json"

    @property
    def profiles_dir(self) -> Path:
        """The domain's dbt folder in the data folder: profile, partial-parse file, project mirror, run targets."""
        return data_dir() / "dbt" / self.domain

    @property
    def partial_parse_seed(self) -> Path:
        """dbt's partial-parse file from `prepare`, which a data folder's first run starts from."""
        return self.manifest_path.with_name(PARTIAL_PARSE)

    @property
    def partial_parse(self) -> Path:
        """This data folder's partial-parse file, from its latest run."""
        return self.profiles_dir / f"{self.name}.{PARTIAL_PARSE}"

    @property
    def mirror_dir(self) -> Path:
        """The project as dbt runs it: a folder in the data folder whose entries link to the project's.

        dbt runs in it, and the profile reaches the domain's DuckDB file by a path relative
        to it. That path, and so the whole profile, is the same for every data folder, and
        so is dbt's partial-parse file: dbt re-parses in full whenever the profile changes,
        a different DuckDB path included.
        """
        return self.profiles_dir / self.name

    def link_mirror(self, mirror: Path | None = None) -> Path:
        """Make the mirror link every entry of the project (but what dbt writes) and nothing else,
        with `project_file` for dbt_project.yml.

        A data folder copied without its links (`cp -r`, `shutil.copytree`) holds copies
        where links were: they are replaced by links to the project again.
        """
        mirror = mirror or self.mirror_dir
        mirror.mkdir(parents=True, exist_ok=True)
        for link in mirror.iterdir():
            if link.is_symlink() and not link.exists():  # its entry left the project
                link.unlink(missing_ok=True)
        for entry in self.path.iterdir():
            link = mirror / entry.name
            if entry.name in MIRROR_SKIPS or entry.name == PROJECT_FILE or (link.is_symlink() and link.readlink() == entry):
                continue
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            staged = mirror / f".{entry.name}.{os.getpid()}"
            staged.unlink(missing_ok=True)
            staged.symlink_to(entry)
            os.replace(staged, link)
        project_file, text = mirror / PROJECT_FILE, self.project_file()
        if project_file.is_symlink() or not project_file.exists() or project_file.read_text(encoding="utf-8") != text:
            staged = mirror / f".{PROJECT_FILE}.{os.getpid()}"
            staged.write_text(text, encoding="utf-8")
            os.replace(staged, project_file)
        return mirror

    def project_file(self) -> str:
        """dbt_project.yml as dbt runs it: the team's, but each product model built in
        `CANDIDATE_CATALOG`. The same text for `prepare` as for every run, so the prepared
        parse state holds."""
        text = (self.path / PROJECT_FILE).read_text(encoding="utf-8")
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ContractError(self.path / PROJECT_FILE, None, None, self.problem(f"{PROJECT_FILE} is not YAML: {error}")) from None
        if not self.product_models or not isinstance(document, dict):
            return text
        document["models"] = document.get("models") or {}
        for name in self.product_models:
            path = self._config_path(document, name)
            if path is None:  # binding the product names the missing model
                continue
            config = document["models"]
            for part in path:
                if not isinstance(config.get(part), dict):
                    config[part] = {}
                config = config[part]
            config["+database"] = CANDIDATE_CATALOG
        return yaml.safe_dump(document, sort_keys=False)

    def _config_path(self, document: dict[str, Any], model: str) -> list[str] | None:
        """Where dbt_project.yml configures one model: the project, its folders under its model path, its name."""
        for root in document.get("model-paths", ["models"]):
            for file in sorted((self.path / root).rglob(f"{model}.*")):
                if file.suffix in (".sql", ".py"):
                    return [document.get("name"), *file.relative_to(self.path / root).parent.parts, model]
        return None

    def write_profile(self) -> Path:
        """The profile dbt runs with: the domain's DuckDB file, models built as candidates."""
        path = os.path.relpath(warehouse_path(self.domain), self.mirror_dir)
        output = {
            "type": "duckdb", "path": path, "schema": CANDIDATE_SCHEMA, "threads": 1, "keep_open": False,
            "settings": {"TimeZone": TIME_ZONE},
        }
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        (self.profiles_dir / "profiles.yml").write_text(yaml.safe_dump({PROFILE: {"target": PROFILE, "outputs": {PROFILE: output}}}))
        return self.profiles_dir

    def project_files(self) -> Iterator[Path]:
        for folder, subfolders, files in os.walk(self.path):
            subfolders[:] = [s for s in subfolders if s not in IGNORED_FOLDERS]
            yield from (Path(folder) / f for f in files)

    @property
    def parsed_files(self) -> Path:
        """The project's files when the manifest was parsed, one relative path a line."""
        return self.manifest_path.with_name(PARSED_FILES)

    def file_names(self) -> list[str]:
        return sorted(str(f.relative_to(self.path)) for f in self.project_files())

    @property
    def parsed_project(self) -> Path:
        return self.manifest_path.with_name(PARSED_PROJECT)

    def is_stale(self) -> bool:
        """Whether a file changed since the manifest was parsed: edited (newer), or added,
        removed or renamed (a move keeps a file's time, so the list of names tells); or
        whether the products among its models changed."""
        if not all(p.exists() for p in (self.manifest_path, self.parsed_files, self.parsed_project)):
            return True
        built = self.manifest_path.stat().st_mtime
        if self.parsed_files.read_text(encoding="utf-8").splitlines() != self.file_names():
            return True
        if self.parsed_project.read_text(encoding="utf-8") != self.project_file():
            return True
        return any(f.stat().st_mtime > built for f in self.project_files())

    def problem(self, problem: str, node: str | None = None, file: str | None = None, kind: str = "model") -> str:
        """The problem, after where it is: the project, the node (a model, or a `kind` such as a test) and its file."""
        where = f"dbt project {self.name}" + (f", {kind} {node}" if node else "") + (f" ({file})" if file else "")
        return f"{where}: {problem}"


def prepare(project: DbtProjectRef) -> None:
    """Parse the project into target/manifest.json; a parse error names the project, model and file."""
    if not (project.path / PROJECT_FILE).exists():
        raise ContractError(project.path, None, None, project.problem(f"no {PROJECT_FILE} in {project.path}"))
    # Parse a mirror, as runs do, into a private folder and move the manifest into place:
    # processes loading the location at the same time never read a half-written manifest.
    scratch = project.manifest_path.parent / f".parse-{os.getpid()}"
    mirror = project.link_mirror(scratch / "project")
    command = [dbt_executable(), "parse", "--profile", PROFILE, "--target", PROFILE, "--profiles-dir", str(project.write_profile()),
               "--target-path", str(scratch)]
    env = {**os.environ, "DBT_LOG_FORMAT": "json", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROJECT_DIR": str(mirror)}
    try:
        names = project.file_names()
        done = subprocess.run(command, cwd=mirror, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            if (scratch / PARTIAL_PARSE).exists():
                os.replace(scratch / PARTIAL_PARSE, project.partial_parse_seed)
            (scratch / PARSED_FILES).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
            os.replace(scratch / PARSED_FILES, project.parsed_files)
            os.replace(mirror / PROJECT_FILE, project.parsed_project)
            os.replace(scratch / "manifest.json", project.manifest_path)
            return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    errors = []
    for line in done.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("info", {}).get("level") == "error":
            errors.append(event["info"]["msg"].removeprefix("Encountered an error:\n").strip())
    detail = "; ".join(errors) or (done.stderr or done.stdout).strip()[-2000:]
    raise ContractError(project.path / PROJECT_FILE, None, None, project.problem(f"does not parse: {detail}"))


_manifests: dict[Path, tuple[float, dict[str, Any]]] = {}


def load_manifest(project: DbtProjectRef) -> dict[str, Any]:
    """The project's manifest, parsed first if missing or stale, read once per process."""
    if project.is_stale():
        prepare(project)
    built = project.manifest_path.stat().st_mtime
    cached = _manifests.get(project.manifest_path)
    if cached is None or cached[0] != built:
        cached = (built, json.loads(project.manifest_path.read_bytes()))
        _manifests[project.manifest_path] = cached
    return cached[1]


@dataclass(frozen=True)
class Manifest:
    """The questions the mesh asks of a dbt manifest."""

    project: DbtProjectRef
    data: dict[str, Any]

    @cached_property
    def models(self) -> dict[str, dict[str, Any]]:
        package = self.data["metadata"].get("project_name")
        return {
            node["name"]: node
            for node in self.data["nodes"].values()
            if node["resource_type"] == "model" and node["package_name"] == package
        }

    def node(self, unique_id: str) -> dict[str, Any]:
        return self.data["nodes"].get(unique_id) or self.data["sources"][unique_id]

    def yaml_file(self, node: dict[str, Any]) -> str:
        """The file declaring the model's columns, else its SQL file, relative to the project."""
        patch = node.get("patch_path")
        return patch.split("://", 1)[1] if patch else node["original_file_path"]

    def with_tests(self, name: str) -> list[str]:
        """A model and the tests on it, as dbt selects them (by their full names)."""
        model = self.models[name]
        tests = [self.data["nodes"][c] for c in self.data["child_map"].get(model["unique_id"], []) if c.startswith("test.")]
        return [".".join(node["fqn"]) for node in (model, *tests)]

    def upstream(self, node: dict[str, Any], stop_at: Collection[str] = ()) -> Iterator[dict[str, Any]]:
        """Sources and models this node reads, through any number of models but those named in `stop_at`."""
        seen: set[str] = set()
        stack = list(node["depends_on"]["nodes"])
        while stack:
            unique_id = stack.pop()
            if unique_id in seen:
                continue
            seen.add(unique_id)
            parent = self.node(unique_id)
            yield parent
            if parent["resource_type"] == "model" and parent["name"] not in stop_at:
                stack.extend(parent["depends_on"]["nodes"])


def source_product(source: dict[str, Any]) -> str:
    """The product a dbt source stands for, `<source name>.<table name>` unless its
    `config.meta.dagster.asset_key` names another, as dagster-dbt reads a source's asset
    key; `factories.dbt.MeshTranslator` keys sources by it. Here rather than through
    dagster-dbt, whose import (about 1 s, dbt's with it) every `mesh` command would pay."""
    meta = source.get("config", {}).get("meta") or source.get("meta") or {}
    return ".".join(meta.get("dagster", {}).get("asset_key") or (source["source_name"], source["name"]))


def source_file(product: Product, input_id: str) -> Path:
    """The file declaring the dbt source that `product`'s model reads as `input_id`, as the
    repository shows it (`dbt_projects/orders/models/sources.yml`)."""
    project = DbtProjectRef.of(product.dbt.project, product.domain)
    files = sorted({s["original_file_path"] for s in load_manifest(project)["sources"].values() if source_product(s) == input_id})
    return Path(projects_dir().name, project.name, files[0])  # the first, if sources in two files name one product


def source_relation(source: dict[str, Any]) -> tuple[str, str]:
    return source["schema"], source.get("identifier") or source["name"]


def _contract_problems(product: Product, node: dict[str, Any]) -> list[tuple[str, str]]:
    """What keeps the model from being the product, each with the field of the model's YAML it is about."""
    problems = []
    if not node["config"].get("contract", {}).get("enforced"):
        problems.append(("config.contract", "the model needs `config: {contract: {enforced: true}}` to be a data product"))
    if product.access == "public" and node.get("access") != "public":
        problems.append(("access", f"a public product needs `access: public` on its model (it is {node.get('access')})"))
    declared = {name: column.get("data_type") for name, column in node["columns"].items()}
    for column in product.columns:
        if column.name not in declared:
            problems.append(("columns", f"column {column.name} of the contract is not a column of the model"))
        elif not declared[column.name]:
            problems.append(("columns", f"column {column.name} has no data_type"))
        else:
            try:
                dbt_type = normalize_type(declared[column.name])
            except ValueError as error:
                problems.append(("columns", f"column {column.name}: {error}"))
                continue
            if dbt_type != column.type:
                problems.append(("columns", f"column {column.name} is {declared[column.name]} in dbt but {column.type} in the contract"))
    problems += [("columns", f"column {name} of the model is not in the contract") for name in declared if name not in product.column_types]
    return problems


def _bind(product: Product, manifest: Manifest, in_project: dict[str, Product]) -> Product:
    project = manifest.project
    node = manifest.models.get(product.dbt_model)
    if node is None:
        known = ", ".join(sorted(manifest.models)) or "none"
        raise ContractError(
            product.path, product.id, "dbt.model", project.problem(f"has no model {product.dbt_model} (its models: {known})")
        )
    problems = _contract_problems(product, node)
    if problems:
        file = manifest.yaml_file(node)
        fields = {field for field, _ in problems}
        raise ContractError(
            project.path / file, product.id, fields.pop() if len(fields) == 1 else None,
            project.problem("; ".join(problem for _, problem in problems), product.dbt_model, file),
        )
    inputs = []
    for parent in manifest.upstream(node, stop_at=in_project):  # another product model's inputs are its own
        if parent["resource_type"] == "source":
            inputs.append(source_product(parent))
            if parent["schema"] == product.domain:
                file = parent["original_file_path"]
                raise ContractError(
                    project.path / file, product.id, "dbt.sources",
                    project.problem(f"source {parent['source_name']} reads schema {product.domain}, which is also the name of "
                                    f"the domain's DuckDB file; its own products are in schema main: add `schema: main` "
                                    f"to the source", product.dbt_model, file),
                )
        elif parent["name"] in in_project:
            inputs.append(in_project[parent["name"]].id)
    if product.inputs and set(product.inputs) != set(inputs):
        raise ContractError(
            product.path,
            product.id,
            "inputs",
            project.problem(f"the model reads {sorted(inputs)}, the contract lists {sorted(product.inputs)}; "
                            "leave `inputs` out to take them from dbt", product.dbt_model, node["original_file_path"]),
        )
    return product.model_copy(update={"inputs": tuple(sorted(set(inputs)))})


def bind_dbt_products(products: list[Product]) -> list[Product]:
    """Check each `transform: dbt` product against its model and give it the model's inputs."""
    by_project: dict[str, dict[str, Product]] = {}
    for product in products:
        if product.dbt:
            by_project.setdefault(product.dbt.project, {})[product.dbt_model] = product
    bound = {}
    for name, in_project in by_project.items():
        first = next(iter(in_project.values()))
        project = DbtProjectRef.of(name, first.domain)
        if not project.path.is_dir():
            raise ContractError(first.path, first.id, "dbt.project", f"no dbt project {name} in {projects_dir()}")
        manifest = Manifest(project, load_manifest(project))
        for product in in_project.values():
            bound[product.id] = _bind(product, manifest, in_project)
    return [bound.get(p.id, p) for p in products]


def prepare_all() -> bool:
    """Parse every dbt project a domain builds products with, unless its manifest is up to date.

    Prints what it did; returns False if a project does not parse.
    """
    from platform_lib.contract import load_domain
    from platform_lib.mesh import domains_dir

    ok = True
    for folder in sorted(p for p in domains_dir().iterdir() if (p / "domain.yaml").exists()):
        try:
            domain = load_domain(folder)
            for name in sorted(dbt_product_models(folder)):
                project = DbtProjectRef.of(name, domain.name)
                state = "up to date" if not project.is_stale() and project.partial_parse_seed.exists() else "parsed"
                if state == "parsed":
                    prepare(project)
                print(f"dbt project {name} (domain {domain.name}): {state}, {project.manifest_path}")
        except (ContractError, yaml.YAMLError) as error:
            print(f"cannot prepare: {error}", file=sys.stderr)
            ok = False
    return ok


def dbt_product_models(domain_folder: Path) -> dict[str, tuple[str, ...]]:
    """Per dbt project the domain's contracts name, the models that are its products (sorted),
    read without binding them (which would parse): a project is built the same way
    whichever of its products a run selects."""
    models: dict[str, set[str]] = {}
    for contract in (domain_folder / "products").glob("*.yaml"):
        document = yaml.safe_load(contract.read_text(encoding="utf-8"))
        dbt = document.get("dbt") if isinstance(document, dict) else None
        if isinstance(dbt, dict) and dbt.get("project"):
            models.setdefault(str(dbt["project"]), set()).add(str(dbt.get("model") or contract.stem))
    return {name: tuple(sorted(found)) for name, found in models.items()}
