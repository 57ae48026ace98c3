"""The models of a domain's dbt project as one Dagster multi-asset, published like every product.

dagster-dbt reads the manifest into asset specs: models become assets of the domain
(key `<domain>/<model>`, the domain's group and owner), each dbt source the asset of
the product it stands for, so lineage runs from the producing domain through dbt to
the consumers. dbt tests become checks, blocking at error severity and not at warn.
Models that are products also get their contract's checks and metadata.

A run is write-audit-publish with dbt as the writer, in one dbt process (a fork of
the step's process, `dbt_fork`) that holds the domain's DuckDB file open throughout
(`ProductModels`):
1. refuse to start while an input is blocked; point each dbt source at its product's
   current snapshot (`transform.attach_inputs`, at the relation the source names), and
   each product model of the project that the run reads but does not build at its own;
2. `dbt build`: product models land in memory (`dbt_project.CANDIDATE_CATALOG`), the
   others in the domain's `_candidate` schema; tests run on them;
3. for each product model, the contract's checks (`quality.run_checks`) on the
   candidate, then `serve.publish`, or mark the port blocked if a blocking check,
   dbt's or the contract's, failed, a product upstream in the project did, or the
   model (or a private model it reads) named a relation without `source()` or `ref()`.
   A blocked candidate is kept as `_candidate.<product>` in the file to look into.
A product model written to the file and read back cost more than dbt's whole build of
it in memory (the sample's 10M order lines: the model built into the file 5.0 s, in
memory 2.1 s; the whole step 9.7 s before, 6.8 s since). The step reports
what the dbt process did and fails, naming project, model and file, if anything was
not published.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import pickle
import shutil
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation
from dagster_dbt.asset_utils import (
    DBT_INDIRECT_SELECTION_ENV,
    build_dbt_specs,
    default_metadata_from_dbt_resource_props,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import EventHistoryMetadata, _build_column_lineage_metadata
from packaging import version

from platform_lib import dbt_fork, dbt_project, output_port, storage, withheld
from platform_lib.contract import GENERATING_TABLE_FUNCTIONS, Domain, Product
from platform_lib.factories import transform
from platform_lib.factories.product import (
    audit_and_publish,
    automation_condition,
    definition_metadata,
    failure_recorded,
    freshness_policy,
    product_tags,
    refuse_blocked_inputs,
    refuse_ended_run,
    still_served,
)
from platform_lib.factories.quality import asset_key, check_specs
from platform_lib.storage import column_types, quote


class MeshTranslator(DagsterDbtTranslator):
    """Models are `<domain>/<model>` assets of the domain; a source's key is the product's id it stands for."""

    def __init__(self, domain: Domain, products: Mapping[str, Product]):
        super().__init__()
        self.domain, self.products = domain, products

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return asset_key(dbt_project.source_product(dbt_resource_props))
        return dg.AssetKey([self.domain.name, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return self.domain.name

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        product = self.products.get(dbt_resource_props["name"])
        return [f"team:{product.owner if product else self.domain.owner}"]

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> dict[str, str]:
        """A model that is no product is the domain's own step: nobody else reads it."""
        return {**super().get_tags(dbt_resource_props), "domain": self.domain.name, "access": "internal"}

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition:
        product = self.products.get(dbt_resource_props["name"])
        if product:
            return automation_condition(product)
        return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def _as_product(spec: dg.AssetSpec, product: Product) -> dg.AssetSpec:
    """A product model's spec carries what every product's asset carries, its contract's metadata first."""
    return spec.replace_attributes(
        description=product.description,
        metadata={**spec.metadata, **definition_metadata(product)},
        tags={**spec.tags, **product_tags(product)},
        kinds={"dbt", "duckdb", "parquet"},
        freshness_policy=freshness_policy(product),
    )


def dbt_project_assets(domain: Domain, project_name: str, products: list[Product]) -> dg.AssetsDefinition:
    """Every model of `dbt_projects/<project_name>` as assets of `domain`; `products` are its product models."""
    project = dbt_project.DbtProjectRef.of(project_name, domain.name)
    manifest = dbt_project.load_manifest(project)
    by_model = {p.dbt_model: p for p in products}
    translator = MeshTranslator(domain, by_model)
    specs, dbt_checks = build_dbt_specs(
        translator=translator, manifest=manifest, select="fqn:*", exclude="", selector="", io_manager_key=None, project=None
    )
    by_key = {asset_key(p.id): p for p in products}
    specs = [_as_product(s, by_key[s.key]) if s.key in by_key else s for s in specs]

    @dg.multi_asset(
        name=dbt_project.dbt_step(project_name),
        specs=specs,
        check_specs=[*dbt_checks, *(c for p in products for c in check_specs(p))],
        can_subset=True,
        pool=f"duckdb_{domain.name}",
        allow_arbitrary_check_specs=True,
    )
    def _dbt_models(context):
        yield from build(context, project, dbt_project.Manifest(project, manifest), by_key)

    return _dbt_models


def _node_problems(
    project: dbt_project.DbtProjectRef, manifest: dbt_project.Manifest, results: list[dict], products: Collection[Product]
) -> dict[str, str]:
    """What went wrong per node: a model not built (error, skipped) or a test that could not run, by node name.

    Tests that ran and failed are check results, not problems of their own. dbt's message
    is `withheld` when it may quote a value of a PII column the project's products read.
    """
    problems = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        not_built = node and node["resource_type"] == "model" and result["status"] in ("error", "skipped")
        if not_built or (node and node["resource_type"] == "test" and result["status"] == "error"):
            message = withheld.shown((result.get("message") or "skipped because an upstream node failed").strip(), products)
            problems[node["name"]] = project.problem(message, node["name"], node["original_file_path"], node["resource_type"])
    return problems


def _failed_tests(manifest: dbt_project.Manifest, results: list[dict], statuses: tuple[str, ...] = ("fail", "error")) -> dict[str, list[str]]:
    """Per model name, the dbt tests on it of `statuses`: by default those that failed at
    error severity or could not run; ("warn",) those that failed at warn severity.

    Read from dbt's run results, which hold every test: dagster-dbt makes a check of a
    test on one model, but only an observation of a singular test that reads two. A
    generic test belongs to the model it is declared on, a singular one to every model
    it reads.
    """
    failed: dict[str, list[str]] = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        if not node or node["resource_type"] != "test" or result["status"] not in statuses:
            continue
        models = [node["attached_node"]] if node.get("attached_node") else node["depends_on"]["nodes"]
        for model in (m for m in models if m.startswith("model.")):
            failed.setdefault(manifest.node(model)["name"], []).append(node["name"])
    return failed


def _undeclared_reads(manifest: dbt_project.Manifest, results: list[dict]) -> dict[str, list[str]]:
    """Per model name, what its compiled SQL reads that is none of its sources and refs: a
    view another product's run left in the domain's file, read without `source()`, or a
    port's files through a table function (`read_parquet`): its version would go unrecorded,
    its blocked state would stop nothing, and an internal product would leave its domain.
    SQL whose reads cannot be listed (a PIVOT without its values) is refused too."""
    @functools.cache  # a project's sources and models are named again by every model that reads them
    def relation(name: str) -> tuple[str, ...]:
        """A relation's name parts as DuckDB parses them, without case."""
        return tuple(part.lower() for part in next(iter(storage.relations_read(f"SELECT * FROM {name}")[0])))

    found: dict[str, list[str]] = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        if not node or node["resource_type"] != "model" or not result.get("compiled_code"):
            continue
        try:
            tables, functions = storage.relations_read(result["compiled_code"])
        except storage.UnreadableSql as error:
            found[node["name"]] = [f"has compiled SQL that cannot be checked: {error}"]
            continue
        # An incremental model reads itself (`{{ this }}`); an ephemeral one is a CTE, not a relation.
        declared = {relation(n["relation_name"]) for n in (node, *map(manifest.node, node["depends_on"]["nodes"])) if n.get("relation_name")}
        outside = sorted(".".join(r) for r in tables if relation(".".join(map(quote, r))) not in declared)
        problems = [f"reads {r} without source() or ref()" for r in outside]
        problems += [f"calls the table function {f}: it reads only its sources and refs" for f in sorted(functions - GENERATING_TABLE_FUNCTIONS)]
        if problems:
            found[node["name"]] = problems
    return found


def _columns(connection: duckdb.DuckDBPyConnection, node: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The columns of a built node or an attached source, as dagster-dbt describes them; none
    of a relation DuckDB cannot describe: metadata is never a reason not to publish."""
    try:
        return {column: {"data_type": kind} for column, kind in column_types(connection, node["relation_name"]).items()}
    except duckdb.Error:
        return {}


@dataclass(frozen=True)
class ModelAudit:
    """A product model's audit in the dbt process; its check results as their fields (they do not pickle)."""

    metadata: dict[str, Any]
    checks: list[dict[str, Any]]
    upstream_failed: bool  # not built on a failed upstream: the step reports no materialization, nor an observation

    def check_results(self) -> list[dg.AssetCheckResult]:
        return [dg.AssetCheckResult(**fields) for fields in self.checks]


@dataclass
class DbtOutcome:
    """What the dbt process found and did, for the step to report."""

    error: str | None = None  # an input was not available, or checking and publishing failed
    ran: bool = False  # dbt wrote its run results
    problems: dict[str, str] = field(default_factory=dict)  # per node name, what was not built or published
    audits: dict[str, ModelAudit] = field(default_factory=dict)  # per product model built
    columns: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # per built node and its parents


OUTCOME = "mesh_outcome.pickle"
KEPT_FAILED_RUNS = 5
NOT_AUDITED = "built but neither checked nor published"  # a product model the dbt process never got to audit


@dataclass(frozen=True)
class ProductModels:
    """What the dbt process does around `dbt build` for the project's products (`dbt_fork`'s `around`).

    It holds the domain's DuckDB file open while dbt runs, with an in-memory database
    attached, `CANDIDATE_CATALOG`: dbt's connections to the file share this process's
    DuckDB instance, so the product models dbt builds there are still in memory when dbt
    is done, and are checked and published here. The outcome goes to the step in a file.
    """

    project: dbt_project.DbtProjectRef
    manifest: dbt_project.Manifest
    products: dict[str, Product]  # every product of the project, by model name
    selected: tuple[str, ...]  # the product models the run builds
    private: tuple[str, ...]  # private models they read that the run did not select: dbt rebuilds and tests them too
    run_id: str
    target: Path

    def __call__(self, run_dbt: Callable[[], int]) -> int:
        outcome = DbtOutcome()
        try:
            with closing(storage.connect(self.project.domain)) as connection:
                connection.execute(f"ATTACH ':memory:' AS {dbt_project.CANDIDATE_CATALOG}")
                try:
                    versions = self._attach_inputs(connection)
                except transform.TransformError as error:
                    outcome.error = str(error)
                    return 1
                self._restore_incremental(connection)
                code = run_dbt()
                self._audit(connection, versions, outcome)
                return code
        except Exception as error:  # the step reports what was published before, and this
            said = withheld.shown(str(error), self.products.values()) if isinstance(error, duckdb.Error) else repr(error)
            outcome.error = self.project.problem(f"checking and publishing the product models failed: {said}")
            raise
        finally:
            self._write(outcome)

    def _write(self, outcome: DbtOutcome) -> None:
        """Write the outcome so far: if the process dies, the step still reports what it published."""
        staged = self.target / f".{OUTCOME}"
        staged.write_bytes(pickle.dumps(outcome))
        os.replace(staged, self.target / OUTCOME)

    def outcome(self) -> DbtOutcome | None:
        path = self.target / OUTCOME
        return pickle.loads(path.read_bytes()) if path.exists() else None

    def _model(self, name: str) -> dict[str, Any]:
        return self.manifest.models[name]

    def _in_memory(self, name: str) -> bool:
        """Whether dbt builds the product model in memory (it may set a `database` of its own)."""
        return self._model(name)["database"] == dbt_project.CANDIDATE_CATALOG

    def _attach_inputs(self, connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
        """Point every dbt source the selected products read (themselves or through private
        models) at its product's snapshot, and so every product model of the project they
        read that this run does not build; one it builds has its own sources. (A public
        product's snapshot is masked: a model reading it there reads its PII hashed, as other
        domains do.) Returns each selected product's input versions."""
        versions: dict[str, dict[str, str]] = {}
        for name in self.selected:
            product, node = self.products[name], self._model(name)
            upstream = list(self.manifest.upstream(node, stop_at=self.products))
            relations: dict[str, tuple[str, ...]] = {
                dbt_project.source_product(s): dbt_project.source_relation(s) for s in upstream if s["resource_type"] == "source"
            }
            relations.update({
                self.products[m["name"]].id: (m["database"], m["schema"], m["alias"])
                for m in upstream if m["resource_type"] == "model" and m["name"] in self.products and m["name"] not in self.selected
            })
            try:
                versions[product.id] = transform.attach_inputs(connection, product, relations)
            except transform.TransformError as error:
                file = node["original_file_path"]
                problem = str(error).removeprefix(f"{product.id}: ")  # the project's problem names the model already
                raise transform.TransformError(self.project.problem(f"an input is not available: {problem}", name, file)) from None
        return versions

    def _incremental(self, name: str) -> bool:
        return self._model(name)["config"].get("materialized") == "incremental"

    def _restore_incremental(self, connection: duckdb.DuckDBPyConnection) -> None:
        """An incremental product model goes on from its table of the last run, kept in the file."""
        for name in (n for n in self.selected if self._incremental(n) and self._in_memory(n)):
            node, product = self._model(name), self.products[name]
            if storage.relation_kind(connection, storage.CANDIDATE_SCHEMA, product.name) == "TABLE":
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(node['database'])}.{quote(node['schema'])}")
                connection.execute(f"CREATE TABLE {node['relation_name']} AS FROM {storage.kept_candidate(product.name)}")

    def _audit(self, connection: duckdb.DuckDBPyConnection, versions: dict[str, dict[str, str]], outcome: DbtOutcome) -> None:
        """Check and publish each product model dbt built, in the order dbt built them, into `outcome`."""
        results_file = self.target / "run_results.json"
        if not results_file.exists():
            return
        results = json.loads(results_file.read_bytes())["results"]
        manifest, project = self.manifest, self.project
        outcome.ran, outcome.problems = True, _node_problems(project, manifest, results, self.products.values())
        dbt_failures, dbt_warnings = _failed_tests(manifest, results), _failed_tests(manifest, results, ("warn",))
        for name in (n for n in self.private if n in dbt_failures):  # the run reports no check of theirs
            outcome.problems[name] = project.problem(
                f"failed {', '.join(dbt_failures[name])}, rebuilt for the products that read it", name, self._model(name)["original_file_path"]
            )
        built = [n for r in results if r["status"] == "success" and (n := manifest.data["nodes"].get(r["unique_id"])) and n.get("relation_name")]
        for node in built:
            for relation in (node, *map(manifest.node, manifest.data["parent_map"][node["unique_id"]])):
                if relation.get("relation_name") and relation["unique_id"] not in outcome.columns:
                    outcome.columns[relation["unique_id"]] = _columns(connection, relation)
        self._write(outcome)
        undeclared = _undeclared_reads(manifest, results)
        not_published: set[str] = set()
        published: dict[str, str] = {}  # the versions this run published, which products downstream in the project read
        for node in (n for n in built if n["resource_type"] == "model" and n["name"] in self.products):
            product = self.products[node["name"]]
            upstream_failed = [f"upstream {i} was not published" for i in product.inputs if i in not_published]
            private_read = [m["name"] for m in manifest.upstream(node) if m["resource_type"] == "model" and m["name"] not in self.products]
            reads = [f"model {m} {r}" for m in (node["name"], *private_read) for r in undeclared.get(m, [])]
            inputs = {**versions[product.id], **{i: published[i] for i in product.inputs if i in published}}
            audit = audit_and_publish(
                connection, product, node["relation_name"], self.run_id, inputs,
                failed_elsewhere=(*dbt_failures.get(node["name"], []), *reads, *upstream_failed),
                warned_elsewhere=tuple(dbt_warnings.get(node["name"], [])),
            )
            if self._in_memory(node["name"]):
                storage.keep_candidate(connection, product.name, bool(audit.failed) or self._incremental(node["name"]), node["relation_name"])
            if audit.failed:
                not_published.add(product.id)
                outcome.problems[node["name"]] = project.problem(
                    f"not published, blocking checks failed: {', '.join(audit.failed)}. {still_served(audit)}",
                    node["name"],
                    node["original_file_path"],
                )
            else:
                published[product.id] = str(audit.metadata["published_version"])
            metadata = {**audit.metadata, "input_versions": inputs, "dbt_model": f"{project.name}.{node['name']}"}
            outcome.audits[node["name"]] = ModelAudit(metadata, [c._asdict() for c in audit.checks], bool(upstream_failed))
            self._write(outcome)


def _with_column_metadata(event: Any, invocation: DbtCliInvocation, manifest: dbt_project.Manifest, columns: Mapping[str, dict], log) -> Any:
    """A built model's event with its column schema and column lineage, as dagster-dbt's
    `fetch_column_metadata` gives them: lineage comes from sqlglot reading the compiled
    SQL in the invocation's target folder with the columns of the model and of its parents."""
    if not isinstance(event, dg.Output):
        return event
    node = manifest.node(event.metadata["unique_id"].value)
    own = columns.get(node["unique_id"], {})
    metadata = {**event.metadata, **default_metadata_from_dbt_resource_props({"columns": own})}
    parents = [manifest.node(i) for i in manifest.data["parent_map"][node["unique_id"]]]
    try:
        metadata.update(
            _build_column_lineage_metadata(
                event_history_metadata=EventHistoryMetadata(own, {p["relation_name"]: columns.get(p["unique_id"], {}) for p in parents}),
                dbt_resource_props=node,
                manifest=manifest.data,
                dagster_dbt_translator=invocation.dagster_dbt_translator,
                target_path=invocation.target_path,
                project=None,
            )
        )
    except Exception as error:  # lineage is a view on the model, never a reason not to publish it
        log.warning(f"no column lineage for dbt model {node['name']} ({node['original_file_path']}): {error!r}")
    return event.with_metadata(metadata)


def _start_build(
    context: dg.AssetExecutionContext, project: dbt_project.DbtProjectRef, target: Path, around: ProductModels
) -> DbtCliInvocation:
    """`dbt build` of the models and tests the run selected, as dagster-dbt's `DbtCliResource.cli`
    starts it (same selection, flags and environment), but in a fork of this process
    (`dbt_fork`) inside `around`: dagster-dbt only starts a new `dbt` interpreter, which
    imports dbt again. dagster-dbt's `DbtCliInvocation` turns dbt's log lines into
    Dagster events as usual."""
    mirror = project.link_mirror()
    params = get_updated_cli_invocation_params_for_context(context, manifest={}, dagster_dbt_translator=DagsterDbtTranslator())
    env = {
        **os.environ,
        "DAGSTER_DBT_CLI": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_FORMAT": "json",  # the lines DbtCliInvocation reads
        # dagster-dbt prints their messages as they are: colour codes only for a terminal
        "DBT_USE_COLORS": os.environ.get("DBT_USE_COLORS", "true" if sys.stderr.isatty() else "false"),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
        "DBT_PROFILES_DIR": str(project.write_profile()),
        "DBT_PROJECT_DIR": str(mirror),
        **({DBT_INDIRECT_SELECTION_ENV: params.indirect_selection} if params.indirect_selection else {}),
        # The dbt process works in the mirror: where the mesh's files are, as absolute paths.
        "MESH_DATA_DIR": str(storage.data_dir()),
        "MESH_DBT_PROJECTS_DIR": str(dbt_project.projects_dir()),
        **({"MESH_PORTS_URL": storage.published_dir().as_uri()} if os.environ.get("MESH_PORTS_URL") else {}),
    }
    selection = _select_too(params.selection_args, [r for name in around.private for r in around.manifest.with_tests(name)])
    args = ["build", "--profile", dbt_project.PROFILE, "--target", dbt_project.PROFILE, *selection]
    context.log.info(f"Running dbt command: `dbt {' '.join(args)}` in {mirror}")
    return DbtCliInvocation(
        process=dbt_fork.start(args, env, cwd=mirror, around=around),
        manifest=params.manifest,
        dagster_dbt_translator=params.dagster_dbt_translator,
        project_dir=mirror,
        target_path=target,
        raise_on_error=False,
        cli_version=version.parse(importlib.metadata.version("dbt-core")),
        context=context,
    )


def _select_too(selection: list[str], resources: list[str]) -> list[str]:
    """dagster-dbt's selection of a subset (`--select "a b"`) with these resources too; no
    selection builds every model already."""
    if not resources or "--select" not in selection:
        return selection
    at = selection.index("--select") + 1
    return [*selection[:at], " ".join([selection[at], *resources]), *selection[at + 1:]]


def _private_models_read(
    context: dg.AssetExecutionContext, project: dbt_project.DbtProjectRef, manifest: dbt_project.Manifest,
    models: Mapping[str, Product], selected: tuple[str, ...],
) -> tuple[str, ...]:
    """The private models the selected product models read (through other private models)
    that the run did not select. dbt would read their tables as an earlier run left them,
    maybe after they failed their tests: the run rebuilds and tests them too."""
    read = {
        m["name"]
        for name in selected
        for m in manifest.upstream(manifest.models[name], stop_at=models)
        if m["resource_type"] == "model" and m["name"] not in models
    }
    return tuple(sorted(n for n in read if dg.AssetKey([project.domain, n]) not in context.selected_asset_keys))


def _run_dbt(
    context: dg.AssetExecutionContext,
    project: dbt_project.DbtProjectRef,
    manifest: dbt_project.Manifest,
    models: dict[str, Product],
    selected: tuple[str, ...],
) -> tuple[list, DbtOutcome]:
    """`dbt build` of the selected models, its product models checked and published; returns its
    Dagster events and the dbt process's outcome once it has exited.

    dbt runs in the project's mirror in the data folder (`DbtProjectRef.mirror_dir`); each
    run gets its own target folder there, removed once read, but for the latest failed
    runs', kept to look into (dbt.log, the compiled SQL, run_results.json). dbt's partial-parse file is
    kept for the next run, which then skips most of the parse; a data folder's first run
    starts from the one `mesh prepare-dbt` made (dbt re-parses what changed since).
    """
    runs = project.profiles_dir / "runs"
    target = runs / f"{project.name}-{context.run_id}"
    target.mkdir(parents=True, exist_ok=True)
    parsed = next((p for p in (project.partial_parse, project.partial_parse_seed) if p.exists()), None)
    if parsed:
        shutil.copy(parsed, target / dbt_project.PARTIAL_PARSE)
    failed = True
    try:
        private = _private_models_read(context, project, manifest, models, selected)
        around = ProductModels(project, manifest, models, selected, private, context.run_id, target)
        invocation = _start_build(context, project, target, around)
        succeeded = invocation.is_successful()
        events = list(invocation.stream())
        outcome = around.outcome() or DbtOutcome()
        if not (outcome.ran or outcome.error):
            outcome.error = project.problem(f"dbt did not run: {'no run results' if succeeded else invocation.get_error()}")
        events = [_with_column_metadata(e, invocation, manifest, outcome.columns, context.log) for e in events]
        if (target / dbt_project.PARTIAL_PARSE).exists():
            os.replace(target / dbt_project.PARTIAL_PARSE, project.partial_parse)
        failed = not succeeded or bool(outcome.error or outcome.problems)
    finally:
        if not failed:
            shutil.rmtree(target, ignore_errors=True)
        for old in sorted(runs.iterdir(), key=lambda run: run.stat().st_mtime)[:-KEPT_FAILED_RUNS]:
            shutil.rmtree(old, ignore_errors=True)
    return events, outcome


def _of_unselected_model(context: dg.AssetExecutionContext, event: Any) -> bool:
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name) not in context.selected_asset_keys
    return isinstance(event, dg.AssetCheckResult) and event.asset_key not in context.selected_asset_keys


def build(
    context: dg.AssetExecutionContext,
    project: dbt_project.DbtProjectRef,
    manifest: dbt_project.Manifest,
    products: dict[dg.AssetKey, Product],
) -> Iterator[dg.Output | dg.AssetObservation | dg.AssetCheckResult]:
    refuse_ended_run(context)
    # dbt's tests and the contract's checks run on the candidate a build makes, never on their own
    checked = {k.asset_key for k in context.selected_asset_check_keys} - set(context.selected_asset_keys)
    if checked:
        alone = ", ".join(sorted(k.to_user_string() for k in checked))
        raise dg.Failure(description=f"the checks of {alone} run only on a new candidate: materialize {alone} to run them")
    selected = [p for key, p in products.items() if key in context.selected_asset_keys]
    rebuilt = {p.id for p in selected}  # their candidates are rebuilt and audited again in this run
    models = {p.dbt_model: p for p in products.values()}
    with failure_recorded(selected, context.run_id):
        for product in selected:
            refuse_blocked_inputs(product, rebuilt)
        events, outcome = _run_dbt(context, project, manifest, models, tuple(p.dbt_model for p in selected))
    for product in (p for p in selected if p.dbt_model not in outcome.audits):  # the checks never decided
        why = outcome.problems.get(product.dbt_model) or outcome.error or project.problem(NOT_AUDITED, product.dbt_model)
        output_port.mark_failed(product.id, context.run_id, why)
    if not outcome.ran:
        raise dg.Failure(description=outcome.error)
    problems = list(outcome.problems.values())
    for event in events:
        if _of_unselected_model(context, event):  # a private model rebuilt only for the selected products
            continue
        product = products.get(context.asset_key_for_output(event.output_name)) if isinstance(event, dg.Output) else None
        audit = outcome.audits.get(product.dbt_model) if product else None
        if product is None:
            yield event
        elif audit is None:  # the dbt process ended before it got to this model
            problems.append(project.problem(NOT_AUDITED, product.dbt_model))
        else:
            if audit.metadata.get("published"):
                yield event.with_metadata({**event.metadata, **audit.metadata})
            elif not audit.upstream_failed:  # refused: report it, but it is no new version
                yield dg.AssetObservation(asset_key=asset_key(product.id), metadata={**event.metadata, **audit.metadata})
            yield from audit.check_results()
    if problems or outcome.error:
        raise dg.Failure(description="; ".join([*problems, *([outcome.error] if outcome.error else [])]))
