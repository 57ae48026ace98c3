"""One data product as one Dagster asset: build the candidate, check it, publish it.

Write-audit-publish happens inside the asset's step, under the domain's pool, so a
candidate that fails a blocking check is never visible to consumers: the step
records the checks, marks the output port blocked, leaves the previous snapshot
published, keeps the candidate in the domain's `_candidate` schema for the team to
look into, and fails the run with the checks' messages.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

import dagster as dg
import duckdb
from dagster._core.errors import DagsterExecutionInterruptedError

from platform_lib import output_port, storage, withheld
from platform_lib.contract import Product, parse_duration
from platform_lib.factories import append_only, ingest, serve, transform
from platform_lib.factories.quality import asset_key, check_specs, run_checks
from platform_lib.factories.source_files import relative_to_sources
from platform_lib.outcomes import STOPPED

KIND_TAGS = {"ingest": None, "sql": "sql", "pandas": "pandas", "dbt": "dbt"}
QUARANTINE_SHOWN = (("file", "string"), ("line", "int"), ("column", "string"), ("reason", "string"))
"""The columns of the first quarantined rows in an ingest's metadata: where they are and why, not their values."""


def blocked_inputs(product: Product, rebuilt: Collection[str] = ()) -> dict[str, dict]:
    """Inputs whose latest candidate failed a blocking check and was not published (but
    those `rebuilt` in the same run). Raises PortError for a blocked.json it cannot read."""
    return {i: reason for i in product.inputs if i not in rebuilt and (reason := output_port.blocked(i))}


def refuse_blocked_inputs(product: Product, rebuilt: Collection[str] = ()) -> None:
    """Fail the step that would build on a blocked input, or on one whose state is unreadable."""
    try:
        blocked = blocked_inputs(product, rebuilt)
    except output_port.PortError as error:
        raise dg.Failure(description=str(error)) from None
    if blocked:
        raise dg.Failure(description=blocked_message(product, blocked))


def blocked_message(product: Product, blocked: dict[str, dict]) -> str:
    reasons = "; ".join(f"{i} failed {', '.join(r['failed_checks'])} in run {r['run_id']}" for i, r in blocked.items())
    return f"{product.id} is not built while an input is blocked: {reasons}. Fix the input and materialize it again."


@dataclass(frozen=True)
class Built:
    """A product's candidate, written: what it was built from and metadata about the build."""

    inputs: dict[str, str]
    """The input products' versions read."""
    metadata: dict[str, object]
    source_files: dict[str, str] | None = None
    """An append-only source's files, for the published version to record."""
    column_files: dict[str, str] = field(default_factory=dict)
    """Columns some source files lack or have against the contract, with which, for the schema check to say."""


def build_candidate(connection, product: Product, full_refresh: bool = False) -> Built:
    """Write the product's candidate (`storage.candidate`)."""
    if product.source:
        report = ingest.ingest(connection, product, full_refresh)
        metadata: dict[str, object] = {
            "source_files": report.files,
            "quarantined_rows": report.quarantined,
            "quarantine_table": f"{storage.QUARANTINE_SCHEMA}.{product.name}",
        }
        if report.plan.base:
            metadata["source_files_read_before"] = report.plan.read_before
            metadata["added_to_version"] = report.plan.base.version
            metadata["source_files_added"] = [relative_to_sources(str(file)) for file in report.plan.read]
        if report.plan.changed:
            metadata["source_files_changed_not_read_again"] = list(report.plan.changed)
        if report.first_bad_rows:
            metadata["first_bad_row"] = report.first_bad
            metadata["first_quarantined_rows"] = dg.MetadataValue.table(
                records=[
                    dg.TableRecord({"file": relative_to_sources(r.file), "line": r.line, "column": r.column, "reason": r.reason})
                    for r in report.first_bad_rows
                ],
                schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in QUARANTINE_SHOWN]),
            )
        if report.unread_columns:
            metadata["source_columns_not_read"] = list(report.unread_columns)
        if report.unterminated_files:
            metadata["source_files_without_final_newline"] = list(report.unterminated_files)
        return Built({}, metadata, report.plan.record or None, report.column_files)
    versions = transform.attach_inputs(connection, product)
    if product.transform == "sql":
        transform.run_sql(connection, product)
    else:
        transform.run_pandas(connection, product)
    return Built(versions, {"input_versions": versions})


@dataclass(frozen=True)
class Audit:
    """What audit-and-publish did with a candidate: its checks, what failed, the step's metadata."""

    checks: list[dg.AssetCheckResult]
    failed: list[str]
    metadata: dict[str, object]


def audit_and_publish(
    connection,
    product: Product,
    candidate: str,
    run_id: str,
    inputs: dict[str, str],
    failed_elsewhere: tuple[str, ...] = (),
    source_files: dict[str, str] | None = None,
    column_files: Mapping[str, str] | None = None,
    warned_elsewhere: tuple[str, ...] = (),
) -> Audit:
    """Check `candidate` against the contract; publish it if no blocking check (here or
    in `failed_elsewhere`, e.g. dbt's tests) failed, with the warn-severity ones it failed
    (here or in `warned_elsewhere`) for `mesh status`, else mark the port blocked."""
    checks = run_checks(connection, product, candidate, column_files, served_rows(product))
    failed = [*failed_elsewhere, *(c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR)]
    warned = [*warned_elsewhere, *(c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN)]
    metadata: dict[str, object] = {
        "dagster/row_count": connection.execute(f"SELECT count(*) FROM {candidate}").fetchone()[0],
        "contract_version": product.version,
    }
    if failed:
        output_port.mark_blocked(product.id, run_id, failed)
        served = output_port.current(product.id)
        metadata.update(published=False, served_version=served.version if served else "none")
    else:
        snapshot = serve.publish(connection, product, candidate, run_id, inputs, source_files, warned)
        metadata.update(
            published=True,
            published_version=snapshot.version,
            snapshot_path=dg.MetadataValue.path(str(snapshot.path)),
            snapshot_bytes=snapshot.bytes,
        )
        if unsalted := serve.unsalted_hashes(product):
            metadata["pii_hashed_without_salt"] = f"{', '.join(unsalted)}: plain SHA-256, reversible with a list of values; set MESH_PII_SALT"
    return Audit(checks, failed, metadata)


def served_rows(product: Product) -> int | None:
    """The rows of the version consumers read, for the `row_count` check: None without a
    `max_row_drop`, before a first version, and while the pointer is unreadable (a
    publication replaces it, which the check must not stop)."""
    if product.max_row_drop is None:
        return None
    try:
        served = output_port.current(product.id)
    except output_port.PortError:
        return None
    return served.rows if served else None


def still_served(audit: Audit) -> str:
    """What consumers read after a candidate was refused, in a sentence."""
    version = audit.metadata["served_version"]
    return "No version was published before: consumers have none." if version == "none" else f"Consumers keep reading {version}."


def refuse_ended_run(context: dg.AssetExecutionContext) -> None:
    """A step runs only while its run does. A Celery task may be delivered after its run
    ended: again after its worker died (`mesh worker`'s settings), or still queued when its run's
    process was killed and the run failed. Run then, the step would build outside the run's
    pool and could publish over a later run's version. Dagster's own step workers check
    this; dagster-celery's task does not."""
    run = context.instance.get_run_by_id(context.run_id)
    if run is not None and (run.is_finished or run.status == dg.DagsterRunStatus.CANCELING):
        raise dg.Failure(
            description=f"{context.op_execution_context.op_def.name}: not run, its run {context.run_id} ended "
            f"({run.status.value}) before the step started (a task delivered late); nothing was built or published"
        )


@contextmanager
def failure_recorded(products: Collection[Product], run_id: str) -> Iterator[None]:
    """Record in the products' ports (`output_port.mark_failed`) an error that stops their
    run before their checks decide, a refusal to build on a blocked input too, for `mesh
    status` and its alerts (which would otherwise show the last run's error, or none). An
    ingest's or a transform's error, which names file and product, fails the step with its
    message alone, and so does a DuckDB error whose text `withheld` keeps from the event log.
    The build is recorded as it starts (`output_port.mark_building`): a process killed
    outright records no error, and its run then counts as failed once the process is gone.
    A run told to stop (Ctrl-C, SIGTERM) records that, not the error it raised to stop
    (DuckDB's `Query interrupted`)."""
    for product in products:
        output_port.mark_building(product.id, run_id)
    try:
        yield
    except (DagsterExecutionInterruptedError, KeyboardInterrupt):  # the run was told to stop
        _record_stop(products, run_id)
        raise
    except dg.Failure as error:  # the mesh's own refusal: an input blocked, or its state unreadable
        for product in products:
            output_port.mark_failed(product.id, run_id, error.description or "")
        raise
    except (ingest.IngestError, transform.TransformError, storage.WarehouseError) as error:
        # The first two name their product; the domain's file is every product's of the step.
        text = f"{', '.join(p.id for p in products)}: {error}" if isinstance(error, storage.WarehouseError) else str(error)
        for product in products:
            output_port.mark_failed(product.id, run_id, text)
        raise dg.Failure(description=text) from None
    except Exception as error:
        if _interrupted(error):  # DuckDB ended its query for the run's stop
            _record_stop(products, run_id)
            raise
        text = withheld.shown(str(error), products) if isinstance(error, duckdb.Error) else str(error)
        for product in products:
            output_port.mark_failed(product.id, run_id, f"{product.id}: {type(error).__name__}: {text}")
        if text != str(error):
            raise dg.Failure(description=f"{', '.join(p.id for p in products)}: {type(error).__name__}: {text}") from None
        raise


def _interrupted(error: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, is Dagster's interrupt."""
    while error is not None:
        if isinstance(error, (DagsterExecutionInterruptedError, KeyboardInterrupt)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _record_stop(products: Collection[Product], run_id: str) -> None:
    for product in products:
        output_port.mark_failed(product.id, run_id, f"{STOPPED} while it built {product.id}")


def materialize(
    context: dg.AssetExecutionContext, product: Product
) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
    refuse_ended_run(context)
    candidate = storage.candidate(product.name)
    with failure_recorded([product], context.run_id), closing(storage.connect(product.domain)) as connection:
        refuse_blocked_inputs(product)
        built = build_candidate(connection, product, full_refresh=context.run.tags.get(append_only.FULL_REFRESH_TAG) == "true")
        audit = audit_and_publish(
            connection, product, candidate, context.run_id, built.inputs, source_files=built.source_files, column_files=built.column_files
        )
        storage.keep_candidate(connection, product.name, keep=bool(audit.failed))
    if not audit.failed:
        yield dg.MaterializeResult(metadata={**built.metadata, **audit.metadata}, check_results=audit.checks)
    else:  # no new version: an observation, so that the asset's latest materialization and freshness stay the served one's
        yield dg.AssetObservation(asset_key=asset_key(product.id), metadata={**built.metadata, **audit.metadata})
        yield from audit.checks
        messages = "; ".join(f"{c.check_name}: {c.description}" for c in audit.checks if c.check_name in audit.failed)
        raise dg.Failure(
            description=f"{product.id} was not published, blocking checks failed: {messages}.{_appended(built)} {still_served(audit)}"
        )


def _appended(built: Built) -> str:
    """An append-only candidate's make-up, for a refusal to point at the files its run added."""
    if "added_to_version" not in built.metadata:
        return ""
    added, base = built.metadata["source_files_added"], built.metadata["added_to_version"]
    if not added:
        return f" The rows checked were {base}'s alone (append-only, no new file)."
    return f" The rows checked were {base}'s and those of {', '.join(added)} (append-only), which the next run reads again."


def automation_condition(product: Product) -> dg.AutomationCondition:
    """When automation builds a product, and never on top of an input's failed blocking check.

    A missing product is built as soon as its inputs exist, so a new mesh builds itself
    (Dagster's `on_missing` ignores assets already missing when automation starts); a
    failed attempt is not retried in a loop. Products without a schedule then follow
    their inputs' updates (`eager`); scheduled ones wait for their cron.
    """
    condition = dg.AutomationCondition
    build_missing = (
        condition.missing()
        & ~condition.any_deps_missing()
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
        & ~condition.execution_failed()
    ).with_label("missing, inputs ready, not failed")
    trigger = build_missing if product.schedule else condition.eager() | build_missing
    return trigger & condition.all_deps_blocking_checks_passed()


def freshness_policy(product: Product) -> dg.FreshnessPolicy | None:
    if not product.freshness:
        return None
    warn = product.freshness.warn_after
    return dg.FreshnessPolicy.time_window(
        fail_window=parse_duration(product.freshness.fail_after), warn_window=parse_duration(warn) if warn else None
    )


def definition_metadata(product: Product) -> dict[str, object]:
    """What the asset's page shows before any run: the columns as its output port serves them, the contract, the port."""
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=not c.required, unique=list(product.primary_key) == [c.name]),
                tags={"pii": ""} if c.pii else {},
            )
            for c in product.served_columns
        ]
    )
    return {
        "dagster/column_schema": schema,
        "contract_version": product.version,
        "contract": dg.MetadataValue.path(str(product.path)),
        "output_port": dg.MetadataValue.path(str(output_port.port_dir(product.id))),
        "primary_key": ", ".join(product.primary_key) or "none",
    }


def product_tags(product: Product) -> dict[str, str]:
    tags = {"access": product.access, "pii": str(bool(product.pii_columns)).lower(), "domain": product.domain}
    if product.tier:
        tags["tier"] = product.tier
    return tags


def product_asset(product: Product) -> dg.AssetsDefinition:
    kinds = {"duckdb", "parquet", KIND_TAGS[product.kind] or product.source.format}

    @dg.asset(
        key=asset_key(product.id),
        deps=[asset_key(i) for i in product.inputs],
        group_name=product.domain,
        owners=[f"team:{product.owner}"],
        description=product.description,
        tags=product_tags(product),
        kinds=kinds,
        metadata=definition_metadata(product),
        check_specs=check_specs(product),
        pool=f"duckdb_{product.domain}",
        automation_condition=automation_condition(product),
        freshness_policy=freshness_policy(product),
    )
    def _product(context):
        yield from materialize(context, product)

    return _product
