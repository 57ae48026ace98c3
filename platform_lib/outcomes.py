"""What a run did with each product, read from the run's events: the summary `mesh
materialize` prints, the progress lines (progress.py) and what tests look at.

A published candidate is a materialization, a refused one an observation
(factories/product.py); checks are check evaluations; a step that raised is a step
failure, whose message says why.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from platform_lib.columns import aligned
from platform_lib.contract import Product
from platform_lib.factories.quality import asset_key

RENAMED = "(a field renamed at the source?)"
STOPPED = "the run was stopped (Ctrl-C or SIGTERM)"
STOPPING = "mesh/stopping"
"""Metadata key of the engine event of an executor told to stop (`celery_run`): how many times."""


@dataclass
class Outcome:
    """What a run did with one product. A check that fails at `warn` severity is in `warned`,
    not `failed`: it only reports, so the product published with it is `ok`."""

    product: str
    status: str = "skipped"
    rows: int | None = None
    version: str | None = None
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What holds to the contract but looks wrong: source rows quarantined, an optional column
    NULL in every row, a source column the contract does not read (both `RENAMED`), a source
    file cut short."""
    message: str = ""
    trace: str = ""
    """The stack of an error that no check, refusal or bad input explains (a crash, a bug)."""

    @property
    def ok(self) -> bool:
        return self.status == "published" and not self.failed


def outcomes_of(
    result: dg.ExecuteInProcessResult | dg.ExecuteJobResult, products: list[Product], assets: list[dg.AssetsDefinition]
) -> list[Outcome]:
    outcomes = RunOutcomes(products, assets)
    for event in result.all_events:
        outcomes.add(event)
    return outcomes.final()


class RunOutcomes:
    """The products' outcomes, built up from a run's events: one by one as the run goes (the
    progress lines) or all of them after it (the summary)."""

    def __init__(self, products: list[Product], assets: list[dg.AssetsDefinition]):
        self.products = products
        self.outcomes = {p.id: Outcome(p.id) for p in products}
        self.by_key = {asset_key(p.id): self.outcomes[p.id] for p in products}
        self.by_step = {a.node_def.name: [self.by_key[k] for k in a.keys if k in self.by_key] for a in assets}
        self.engine_error = ""
        self.stopped = False

    def add(self, event: dg.DagsterEvent) -> None:
        if event.is_step_materialization:
            self._recorded(event.event_specific_data.materialization)
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            self._recorded(event.event_specific_data.asset_observation)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            self._checked(event.event_specific_data)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = event.event_specific_data
            for outcome in self.by_step[event.step_key]:
                if _stopped(failure.error):  # Dagster's interrupt in the step: what it published stays so
                    outcome.message = STOPPED if outcome.status == "skipped" else outcome.message
                elif failure.user_failure_data:
                    outcome.message = failure.user_failure_data.description
                else:
                    outcome.message, outcome.trace = _first_cause(failure.error).message.strip(), failure.error.to_string()
                if outcome.status == "skipped":
                    outcome.status = "failed"
        elif event.event_type in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED):
            self.stopped = self.stopped or event.event_type == dg.DagsterEventType.RUN_CANCELED or _stopped(event.event_specific_data.error)
        elif event.event_type == dg.DagsterEventType.ENGINE_EVENT and STOPPING in event.event_specific_data.metadata:
            self.stopped = True
        elif event.event_type == dg.DagsterEventType.ENGINE_EVENT and event.event_specific_data.error:
            # The executor failed, not a step: sending the steps ("Encountered error during celery
            # task submission.": the broker unreachable), or one step's task on its worker, which
            # logged the error's stack where it belongs (a worker lacking a setting, say).
            error = event.event_specific_data.error
            if event.step_key in self.by_step:
                for outcome in self.by_step[event.step_key]:
                    outcome.message, outcome.status = f"not built: {event.message}: {_last_line(error)} (its stack is in the worker's log)", "failed"
            else:
                self.engine_error = f"{event.message.rstrip('.')}: {_first_cause(error).message.strip()}"

    def _recorded(self, event: dg.AssetMaterialization | dg.AssetObservation) -> None:
        outcome = self.by_key.get(event.asset_key)
        if outcome is None:  # a dbt model that is not a product
            return
        metadata = {k: v.value for k, v in event.metadata.items()}
        outcome.rows = metadata.get("dagster/row_count")
        outcome.status = "published" if metadata.get("published") else "not published"
        outcome.version = metadata.get("published_version") or metadata.get("served_version")
        if quarantined := metadata.get("quarantined_rows"):
            outcome.notes.append(f"{quarantined} source row(s) quarantined, within max_bad_fraction (`mesh quarantine {outcome.product}` lists them)")
        if unread := metadata.get("source_columns_not_read"):
            outcome.notes.append(f"the source has column {', '.join(unread)}, which the contract does not read {RENAMED}")
        if changed := metadata.get("source_files_changed_not_read_again"):
            outcome.notes.append(
                f"{', '.join(changed)} changed since read into an earlier version, whose rows of it stay as they were "
                f"(append-only; `mesh materialize --full-refresh {outcome.product}` reads every file again)"
            )
        if unterminated := metadata.get("source_files_without_final_newline"):
            outcome.notes.append(f"no newline at the end of {', '.join(unterminated)}: a last line cut short (a file still being written)?")
        if unsalted := metadata.get("pii_hashed_without_salt"):
            outcome.notes.append(f"PII column {unsalted}")

    def _checked(self, evaluation: dg.AssetCheckEvaluation) -> None:
        outcome = self.by_key.get(evaluation.asset_key)
        if outcome is None:
            return
        if evaluation.passed:
            outcome.passed.append(evaluation.check_name)
            if evaluation.check_name == "schema" and (empty := evaluation.metadata.get("empty_columns")) and empty.value:
                outcome.notes.append(f"optional column {', '.join(empty.value)} is NULL in every row {RENAMED}")
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            outcome.warned.append(evaluation.check_name)
        else:
            outcome.failed.append(evaluation.check_name)

    def final(self) -> list[Outcome]:
        """Every outcome, a product not built saying why: the executor failed, the run was stopped, or its inputs stopped it."""
        for product in self.products:
            outcome = self.outcomes[product.id]
            unpublished = [i for i in product.inputs if i in self.outcomes and self.outcomes[i].status != "published"]
            if outcome.status == "skipped" and not outcome.message and self.engine_error:
                outcome.message = f"not built: the run failed: {self.engine_error}"
            elif outcome.status == "skipped" and not outcome.message and self.stopped:
                outcome.message = f"not built: {STOPPED}"
            elif outcome.status == "skipped" and not outcome.message and unpublished:
                outcome.message = f"not built: {', '.join(unpublished)} {'was' if len(unpublished) == 1 else 'were'} not published in this run"
        return list(self.outcomes.values())


def _first_cause(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The error that started it: Dagster wraps a step's in its own."""
    while error.cause:
        error = error.cause
    return error


def _last_line(error: SerializableErrorInfo) -> str:
    """The line of a worker's error that says what went wrong: Celery rebuilds it from its
    text, which holds the errors that caused it and their stacks, the first cause last."""
    said = [line.strip() for line in error.message.split("\nStack Trace:")[0].splitlines() if line.strip()]
    return said[-1] if said else error.cls_name


def _stopped(error: SerializableErrorInfo | None) -> bool:
    """Whether the error is Dagster's interrupt: the run's process was told to stop."""
    return error is not None and _first_cause(error).cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


def without_product(outcome: Outcome) -> str:
    """The outcome's message without the product's id the error may start with."""
    return outcome.message.removeprefix(f"{outcome.product}: ")


def checks_summary(outcome: Outcome) -> str:
    """How its checks went, or nothing if none ran (a product skipped, or failed before them)."""
    if not (outcome.passed or outcome.failed or outcome.warned):
        return ""
    failed = f", {len(outcome.failed)} FAILED" if outcome.failed else ""
    warned = f", {len(outcome.warned)} warn" if outcome.warned else ""
    return f"{len(outcome.passed)} ok{failed}{warned}"


def print_summary(outcomes: list[Outcome]) -> None:
    rows = [["product", "status", "rows", "checks", "version"]]
    rows += [[o.product, o.status, "" if o.rows is None else str(o.rows), checks_summary(o), o.version or ""] for o in outcomes]
    print("\n".join(aligned(rows, right=(2,))))
    for o in outcomes:
        if o.warned:
            print(f"\n{o.product}: warning: {', '.join(o.warned)} failed (severity warn: reported, not blocking)")
        if o.notes:
            print(f"\n{o.product}: note: {'; '.join(o.notes)}")
        if o.message:
            print(f"\n{o.product}: {without_product(o)}")
    traces: dict[str, list[str]] = {}  # the products of a dbt project share their step's
    for o in outcomes:
        if o.trace:
            traces.setdefault(o.trace, []).append(o.product)
    for trace, products in traces.items():
        print(f"\n{', '.join(products)}: an unexpected error; its stack:\n{trace}", file=sys.stderr)
