"""The models of a domain's dbt project as one Dagster multi-asset, published like every product.

dagster-dbt reads the manifest into asset specs: models become assets of the domain
(key `<domain>/<model>`, the domain's group and owner), each dbt source the asset of
the product it stands for, so lineage runs from the producing domain through dbt to
the consumers. dbt tests become checks, blocking at error severity and not at warn.
Models that are products also get their contract's checks and metadata.

A run is write-audit-publish with dbt as the writer:
1. refuse to start while an input is blocked; point each dbt source at its product's
   current snapshot (`transform.attach_inputs`, at the relation the source names), and
   each product model of the project that the run reads but does not build at its own;
2. `dbt build` (in a fork of the step's process, `dbt_fork`): models land in the
   domain's `_candidate` schema, tests run on them;
3. for each product model, the contract's checks (`quality.run_checks`) on the
   candidate, then `serve.publish`, or mark the port blocked if a blocking check,
   dbt's or the contract's, failed, a product upstream in the project did, or the
   model (or a private model it reads) named a relation without `source()` or `ref()`.
The step fails, naming project, model and file, if anything was not published.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator, Mapping

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

from platform_lib import dbt_fork, dbt_project, output_port, storage
from platform_lib.contract import Domain, Product
from platform_lib.factories import transform
from platform_lib.factories.product import (
    audit_and_publish,
    automation_condition,
    blocked_message,
    definition_metadata,
    freshness_policy,
    product_tags,
    still_served,
)
from platform_lib.factories.quality import asset_key, check_specs
from platform_lib.storage import column_types, quote


class MeshTranslator(DagsterDbtTranslator):
    """Models are `<domain>/<model>` assets of the domain; sources keep dagster-dbt's key, the product's id."""

    def __init__(self, domain: Domain, products: Mapping[str, Product]):
        super().__init__()
        self.domain, self.products = domain, products

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
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
    project = dbt_project.DbtProjectRef(project_name, domain.name)
    manifest = dbt_project.load_manifest(project)
    by_model = {p.dbt_model: p for p in products}
    translator = MeshTranslator(domain, by_model)
    specs, dbt_checks = build_dbt_specs(
        translator=translator, manifest=manifest, select="fqn:*", exclude="", selector="", io_manager_key=None, project=None
    )
    by_key = {asset_key(p.id): p for p in products}
    specs = [_as_product(s, by_key[s.key]) if s.key in by_key else s for s in specs]

    @dg.multi_asset(
        name=f"dbt_{project_name}",
        specs=specs,
        check_specs=[*dbt_checks, *(c for p in products for c in check_specs(p))],
        can_subset=True,
        pool=f"duckdb_{domain.name}",
        allow_arbitrary_check_specs=True,
    )
    def _dbt_models(context):
        yield from build(context, project, dbt_project.Manifest(project, manifest), by_key)

    return _dbt_models


def _attach_inputs(
    project: dbt_project.DbtProjectRef, manifest: dbt_project.Manifest, selected: list[Product], in_project: Mapping[str, Product]
) -> dict[str, dict[str, str]]:
    """Point every dbt source the selected products read at its product's snapshot, and so
    every product model of the project they read that this run does not build: dbt reads
    such a model from `_candidate`, where a run killed after dbt built it leaves a table
    nobody checked. (A public product's snapshot is masked: a model reading it there reads
    its PII hashed, as other domains do.) Returns each selected product's input versions."""
    rebuilt = {p.id for p in selected}
    versions: dict[str, dict[str, str]] = {}
    with closing(storage.connect(project.domain)) as connection:
        for product in selected:
            node = manifest.models[product.dbt_model]
            upstream = list(manifest.upstream(node))
            relations = {dbt_project.source_product(s): dbt_project.source_relation(s) for s in upstream if s["resource_type"] == "source"}
            unbuilt = [m for m in upstream if m["resource_type"] == "model" and m["name"] in in_project and in_project[m["name"]].id not in rebuilt]
            relations.update({in_project[m["name"]].id: (m["schema"], m["alias"]) for m in unbuilt})
            for model in unbuilt:  # dbt left a table there: the view takes its place
                kind = connection.execute(
                    "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [model["schema"], model["alias"]]
                ).fetchone()
                if kind and kind[0] == "BASE TABLE":
                    connection.execute(f"DROP TABLE {quote(model['schema'])}.{quote(model['alias'])}")
            try:
                versions[product.id] = transform.attach_inputs(connection, product, relations)
            except transform.TransformError as error:
                file = node["original_file_path"]
                raise dg.Failure(description=project.problem(f"an input is not available: {error}", product.dbt_model, file)) from None
    return versions


def _node_problems(project: dbt_project.DbtProjectRef, manifest: dbt_project.Manifest, results: list[dict]) -> dict[str, str]:
    """What went wrong per node: a model not built (error, skipped) or a test that could not run, by node name.

    Tests that ran and failed are check results, not problems of their own.
    """
    problems = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        not_built = node and node["resource_type"] == "model" and result["status"] in ("error", "skipped")
        if not_built or (node and node["resource_type"] == "test" and result["status"] == "error"):
            message = (result.get("message") or "skipped because an upstream node failed").strip()
            problems[node["name"]] = project.problem(message, node["name"], node["original_file_path"])
    return problems


def _failed_tests(manifest: dbt_project.Manifest, results: list[dict]) -> dict[str, list[str]]:
    """Per model name, the dbt tests on it that failed at error severity or could not run.

    Read from dbt's run results, which hold every test: dagster-dbt makes a check of a
    test on one model, but only an observation of a singular test that reads two. A
    generic test belongs to the model it is declared on, a singular one to every model
    it reads.
    """
    failed: dict[str, list[str]] = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        if not node or node["resource_type"] != "test" or result["status"] not in ("fail", "error"):
            continue
        models = [node["attached_node"]] if node.get("attached_node") else node["depends_on"]["nodes"]
        for model in (m for m in models if m.startswith("model.")):
            failed.setdefault(manifest.node(model)["name"], []).append(node["name"])
    return failed


def _undeclared_reads(manifest: dbt_project.Manifest, results: list[dict]) -> dict[str, list[str]]:
    """Per model name, the relations its compiled SQL names that are none of its sources and
    refs: a view another product's run left in the domain's file, read without `source()`,
    whose version would go unrecorded and whose blocked state would stop nothing."""
    @functools.cache  # a project's sources and models are named again by every model that reads them
    def relation(name: str) -> tuple[str, ...]:
        """A relation's name parts as DuckDB parses them, without case."""
        return tuple(part.lower() for part in next(iter(storage.relations_read(f"SELECT * FROM {name}")[0])))

    found: dict[str, list[str]] = {}
    for result in results:
        node = manifest.data["nodes"].get(result["unique_id"])
        if not node or node["resource_type"] != "model" or not result.get("compiled_code"):
            continue
        read = storage.relations_read(result["compiled_code"])
        # An incremental model reads itself (`{{ this }}`); an ephemeral one is a CTE, not a relation.
        declared = {relation(n["relation_name"]) for n in (node, *map(manifest.node, node["depends_on"]["nodes"])) if n.get("relation_name")}
        outside = sorted(".".join(r) for r in (read[0] if read else ()) if relation(".".join(map(quote, r))) not in declared)
        if outside:
            found[node["name"]] = [f"reads {r} without source() or ref()" for r in outside]
    return found


def _columns(connection: duckdb.DuckDBPyConnection, node: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The columns of a built model or an attached source, as dagster-dbt describes them."""
    name = node["identifier"] if node["resource_type"] == "source" else node["alias"]
    return {column: {"data_type": kind} for column, kind in column_types(connection, f"{quote(node['schema'])}.{quote(name)}").items()}


def _with_column_metadata(
    event: Any, invocation: DbtCliInvocation, manifest: dbt_project.Manifest, connection: duckdb.DuckDBPyConnection, log
) -> Any:
    """A built model's event with its column schema and column lineage, as dagster-dbt's
    `fetch_column_metadata` gives them: lineage comes from sqlglot reading the compiled
    SQL in the invocation's target folder with the columns of the model and of its parents."""
    if not isinstance(event, dg.Output):
        return event
    node = manifest.node(event.metadata["unique_id"].value)
    columns = _columns(connection, node)
    metadata = {**event.metadata, **default_metadata_from_dbt_resource_props({"columns": columns})}
    parents = [manifest.node(i) for i in manifest.data["parent_map"][node["unique_id"]]]
    try:
        metadata.update(
            _build_column_lineage_metadata(
                event_history_metadata=EventHistoryMetadata(columns, {p["relation_name"]: _columns(connection, p) for p in parents}),
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


def _start_build(context: dg.AssetExecutionContext, project: dbt_project.DbtProjectRef, target: Path) -> DbtCliInvocation:
    """`dbt build` of the models and tests the run selected, as dagster-dbt's `DbtCliResource.cli`
    starts it (same selection, flags and environment), but in a fork of this process
    (`dbt_fork`): dagster-dbt only starts a new `dbt` interpreter, which imports dbt again.
    dagster-dbt's `DbtCliInvocation` turns dbt's log lines into Dagster events as usual."""
    mirror = project.link_mirror()
    params = get_updated_cli_invocation_params_for_context(context, manifest={}, dagster_dbt_translator=DagsterDbtTranslator())
    env = {
        **os.environ,
        "DAGSTER_DBT_CLI": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_FORMAT": "json",  # the lines DbtCliInvocation reads
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target),
        "DBT_PROFILES_DIR": str(project.write_profile()),
        "DBT_PROJECT_DIR": str(mirror),
        **({DBT_INDIRECT_SELECTION_ENV: params.indirect_selection} if params.indirect_selection else {}),
    }
    args = ["build", "--profile", dbt_project.PROFILE, "--target", dbt_project.PROFILE, *params.selection_args]
    context.log.info(f"Running dbt command: `dbt {' '.join(args)}` in {mirror}")
    return DbtCliInvocation(
        process=dbt_fork.start(args, env, cwd=mirror),
        manifest=params.manifest,
        dagster_dbt_translator=params.dagster_dbt_translator,
        project_dir=mirror,
        target_path=target,
        raise_on_error=False,
        cli_version=version.parse(importlib.metadata.version("dbt-core")),
        context=context,
    )


def _run_dbt(context: dg.AssetExecutionContext, project: dbt_project.DbtProjectRef, manifest: dbt_project.Manifest):
    """`dbt build` of the selected models; returns its Dagster events and run results once dbt has exited.

    dbt runs in the project's mirror in the data folder (`DbtProjectRef.mirror_dir`); each
    run gets its own target folder there, removed once read. dbt's partial-parse file is
    kept for the next run, which then skips most of the parse; a data folder's first run
    starts from the one `mesh prepare-dbt` made (dbt re-parses what changed since).
    Column metadata is read after dbt exits: DuckDB lets one process write a file.
    """
    target = project.profiles_dir / "runs" / f"{project.name}-{context.run_id}"
    target.mkdir(parents=True, exist_ok=True)
    parsed = next((p for p in (project.partial_parse, project.partial_parse_seed) if p.exists()), None)
    if parsed:
        shutil.copy(parsed, target / dbt_project.PARTIAL_PARSE)
    try:
        invocation = _start_build(context, project, target)
        succeeded = invocation.is_successful()
        events = list(invocation.stream())
        with closing(storage.connect(project.domain)) as connection:
            events = [_with_column_metadata(e, invocation, manifest, connection, context.log) for e in events]
        results_file = target / "run_results.json"
        results = invocation.get_artifact("run_results.json")["results"] if results_file.exists() else []
        error = None if succeeded or results else str(invocation.get_error())
        if (target / dbt_project.PARTIAL_PARSE).exists():
            os.replace(target / dbt_project.PARTIAL_PARSE, project.partial_parse)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return events, results, error


def build(
    context: dg.AssetExecutionContext,
    project: dbt_project.DbtProjectRef,
    manifest: dbt_project.Manifest,
    products: dict[dg.AssetKey, Product],
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    selected = [p for key, p in products.items() if key in context.selected_asset_keys]
    rebuilt = {p.id for p in selected}  # their candidates are rebuilt and audited again in this run
    for product in selected:
        blocked = {i: r for i in product.inputs if i not in rebuilt and (r := output_port.blocked(i))}
        if blocked:
            raise dg.Failure(description=blocked_message(product, blocked))
    versions = _attach_inputs(project, manifest, selected, {p.dbt_model: p for p in products.values()})

    events, results, error = _run_dbt(context, project, manifest)
    if error:
        raise dg.Failure(description=project.problem(f"dbt did not run: {error}"))
    problems = _node_problems(project, manifest, results)
    dbt_failures = _failed_tests(manifest, results)
    undeclared = _undeclared_reads(manifest, results)
    product_models = {p.dbt_model for p in products.values()}

    not_published: set[str] = set()
    published: dict[str, str] = {}  # the versions this run published, which products downstream in the project read
    with closing(storage.connect(project.domain)) as connection:
        for event in events:
            product = products.get(context.asset_key_for_output(event.output_name)) if isinstance(event, dg.Output) else None
            if product is None:
                yield event
                continue
            node = manifest.models[product.dbt_model]
            candidate = f"{quote(node['schema'])}.{quote(node['alias'])}"
            upstream_failed = [f"upstream {i} was not published" for i in product.inputs if i in not_published]
            private = [m["name"] for m in manifest.upstream(node) if m["resource_type"] == "model" and m["name"] not in product_models]
            reads = [f"model {m} {r}" for m in (product.dbt_model, *private) for r in undeclared.get(m, [])]
            inputs = {**versions[product.id], **{i: published[i] for i in product.inputs if i in published}}
            audit = audit_and_publish(
                connection, product, candidate, context.run_id, inputs,
                failed_elsewhere=(*dbt_failures.get(product.dbt_model, []), *reads, *upstream_failed),
            )
            metadata = {**audit.metadata, "input_versions": inputs, "dbt_model": f"{project.name}.{product.dbt_model}"}
            if not audit.failed:
                published[product.id] = str(audit.metadata["published_version"])
            else:
                not_published.add(product.id)
                problems[product.dbt_model] = project.problem(
                    f"not published, blocking checks failed: {', '.join(audit.failed)}. {still_served(audit)}",
                    product.dbt_model,
                    node["original_file_path"],
                )
            if not upstream_failed:  # else nothing new was made: no materialization for automation to follow
                yield event.with_metadata({**event.metadata, **metadata})
            yield from audit.checks
    if problems:
        raise dg.Failure(description="; ".join(problems.values()))
