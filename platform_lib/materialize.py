"""Materialize products in-process, in dependency order across domains, and summarize.

One Dagster run holds all the selected products, so Dagster orders them by their
dependencies and skips everything downstream of a failed blocking check. The run is
recorded in the instance of DAGSTER_HOME when it is set, so the UI shows it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TextIO

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from platform_lib.contract import Product, load_domain
from platform_lib.domain import domain_assets
from platform_lib.factories.append_only import FULL_REFRESH_TAG
from platform_lib.factories.quality import asset_key


RENAMED = "(a field renamed at the source?)"
JOB = "mesh_materialize"
PROGRESS = "mesh_progress"


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


def _instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance, else an ephemeral one.

    Dagster creates its SQLite tables on first use without a lock: two runs starting on a
    fresh DAGSTER_HOME both try, and one fails with "table already exists". Serialize that.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / ".mesh-instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()


def mesh_assets(products: list[Product]) -> list[dg.AssetsDefinition]:
    """The assets building `products`, domain by domain (a dbt project is one multi-asset)."""
    folders = {p.path.parent.parent: [q for q in products if q.domain == p.domain] for p in products}
    return [a for folder, members in folders.items() for a in domain_assets(load_domain(folder), members)]


def in_dependency_order(products: list[Product]) -> list[Product]:
    """Each product after those of the list it reads; products ready together by id."""
    by_id = {p.id: p for p in products}
    order = TopologicalSorter({p.id: [i for i in p.inputs if i in by_id] for p in products})
    order.prepare()
    ordered: list[Product] = []
    while order.is_active():
        ready = sorted(order.get_ready())
        ordered += [by_id[i] for i in ready]
        order.done(*ready)
    return ordered


def buildable(products: list[Product], refused: Collection[str]) -> tuple[list[Product], list[Outcome]]:
    """The products a run can build, and a skipped outcome saying why for each of the others.

    A product that reads a product of a refused domain (one whose code location does not
    load) is not built: that input's contract is unknown or refused, and its port holds
    what an older contract published. Its consumers in the run are skipped too, as Dagster
    skips the consumers of a failed step.
    """
    by_id = {p.id: p for p in products}
    graph = {p.id: [i for i in p.inputs if i in by_id] for p in products}
    cause: dict[str, str] = {}  # product id -> the refused domain it depends on
    skipped = []
    for product_id in TopologicalSorter(graph).static_order():
        for input_id in by_id[product_id].inputs:
            domain = input_id.split(".", 1)[0]
            if input_id in cause:
                cause[product_id] = cause[input_id]
                reads = f"{input_id}, not built either: domain {cause[input_id]} does not load"
            elif domain in refused:
                cause[product_id] = domain
                reads = f"{input_id} of domain {domain}, which does not load"
            else:
                continue
            skipped.append(Outcome(product_id, message=f"not built: it reads {reads}"))
            break
    return [p for p in products if p.id not in cause], skipped


def _run_config() -> dict:
    """Dagster's console log is quiet unless asked for: the summary says what failed and why,
    and `print_summary` gives the stack only of an unexpected error (Dagster's ERROR log
    would give one for every refused product, and a line for every step not run)."""
    return {"loggers": {"console": {"config": {"log_level": os.environ.get("MESH_LOG_LEVEL", "CRITICAL")}}}}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs of `mesh` processes on this host that died, and give back their pool slots.

    Dagster frees a run's pool slots when the run ends. A run executing in a process that is
    killed (SIGKILL, out of memory) never ends, so every later run of its domain would wait
    for the slot forever.
    """
    started = RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED], tags={"mesh/host": socket.gethostname()})
    released = []
    for record in instance.get_run_records(filters=started):
        run = record.dagster_run
        pid = int(run.tags.get("mesh/pid", 0))
        if pid and not _alive(pid):
            instance.report_run_failed(run, message=f"the mesh process {pid} running it died")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def materialize_products(
    products: list[Product], instance: dg.DagsterInstance | None = None, progress: TextIO | None = None, full_refresh: bool = False
) -> list[Outcome]:
    """One in-process run building `products`; with `progress`, a line there as each step
    starts and one for each product as its step ends; `full_refresh` reads every file of
    an append-only source."""
    assets = mesh_assets(products)
    instance = instance or _instance()
    if not instance.is_ephemeral:
        release_dead_runs(instance)
    run_config = _run_config()
    loggers = {"console": dg.colored_console_logger}
    if progress:
        loggers[PROGRESS] = Progress(RunOutcomes(products, assets), progress).logger()
        run_config["loggers"][PROGRESS] = {}
    job = dg.Definitions(assets=assets, jobs=[dg.define_asset_job(JOB)], loggers=loggers).resolve_job_def(JOB)
    tags = {"mesh/cli": "materialize", "mesh/host": socket.gethostname(), "mesh/pid": str(os.getpid()), **_refresh(full_refresh)}
    result = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags, run_config=run_config)
    return outcomes_of(result, products, assets)


def _refresh(full: bool) -> dict[str, str]:
    return {FULL_REFRESH_TAG: "true"} if full else {}


def materialize_distributed(
    products: list[Product], instance: dg.DagsterInstance, progress: TextIO | None = None, full_refresh: bool = False
) -> list[Outcome]:
    """The same run on the deployment's executor (MESH_EXECUTOR), whose workers rebuild the
    job from `platform_lib.whole_mesh`; needs a persistent instance they share. The steps'
    events happen on the workers: `progress` follows them in the instance."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from platform_lib import whole_mesh
    from platform_lib.storage import REPO_ROOT

    repository = ReconstructableRepository.for_module(whole_mesh.__name__, "defs", working_directory=str(REPO_ROOT))
    assets = mesh_assets(products)
    tags = {"mesh/cli": "materialize", "mesh/invocation": uuid.uuid4().hex, **_refresh(full_refresh)}
    with contextlib.ExitStack() as following:
        if progress:
            following.enter_context(Progress(RunOutcomes(products, assets), progress).following(instance, tags))
        with dg.execute_job(
            repository.get_reconstructable_job(whole_mesh.JOB),
            instance=instance,
            asset_selection=[asset_key(p.id) for p in products],
            raise_on_error=False,
            tags=tags,
            run_config=_run_config(),
        ) as result:
            return outcomes_of(result, products, assets)


class Progress(logging.Handler):
    """Prints a line as each step of a run starts, and one for each of its products as it
    ends, from the run's events as they come: as a log handler of an in-process run, to
    which Dagster hands each event as it happens, or `following` a run in the instance."""

    def __init__(self, outcomes: RunOutcomes, out: TextIO):
        super().__init__(logging.DEBUG)
        self.outcomes = outcomes
        self.out = out
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = record.dagster_meta["dagster_event"]  # Dagster's log manager sets it on every record
        if event is not None:
            self.receive(event, record.created)

    def receive(self, event: dg.DagsterEvent, timestamp: float) -> None:
        step = self.outcomes.by_step.get(event.step_key)
        if step is None:
            return
        self.outcomes.add(event)
        if event.event_type == dg.DagsterEventType.STEP_START:
            self.started[event.step_key] = timestamp
            self._line(timestamp, f"building {', '.join(o.product for o in step)}")
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            seconds = timestamp - self.started.get(event.step_key, timestamp)
            for o in step:
                rows = "" if o.rows is None else f", {o.rows:,} rows"
                checks = f", checks {_checks(o)}" if o.passed or o.failed or o.warned else ""
                why = _without_product(o).partition("\n")[0]
                self._line(timestamp, f"{o.product}: {o.status}{rows}{checks} ({seconds:.1f} s){': ' + why if why else ''}")

    def _line(self, timestamp: float, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S', time.localtime(timestamp))}  {text}", file=self.out, flush=True)

    def logger(self) -> dg.LoggerDefinition:
        def progress_logger(_) -> logging.Logger:
            logger = logging.Logger(PROGRESS, logging.DEBUG)
            logger.addHandler(self)
            return logger

        return dg.LoggerDefinition(progress_logger, description="the progress lines of `mesh materialize`")

    @contextlib.contextmanager
    def following(self, instance: dg.DagsterInstance, tags: dict[str, str], interval: float = 0.5) -> Iterator[None]:
        """For a run whose steps run elsewhere: a thread reads the events of the run with
        `tags` from the instance, where the workers write them, until the block ends."""
        done = threading.Event()

        def follow() -> None:
            cursor = None
            while True:
                ending = done.wait(interval)
                try:
                    runs = instance.get_run_records(RunsFilter(tags=tags), limit=1)
                    read = instance.get_records_for_run(runs[0].dagster_run.run_id, cursor=cursor) if runs else None
                except Exception as error:  # the instance's database went away: stop the lines, not the run
                    print(f"no more progress lines: reading the run's events failed: {error}", file=self.out)
                    return
                if read:
                    cursor = read.cursor
                    for record in read.records:
                        if record.event_log_entry.dagster_event:
                            self.receive(record.event_log_entry.dagster_event, record.event_log_entry.timestamp)
                if ending and not (read and read.has_more):
                    return

        thread = threading.Thread(target=follow, name=PROGRESS, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


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

    def add(self, event: dg.DagsterEvent) -> None:
        # A published candidate is a materialization, a refused one an observation (factories/product.py).
        if event.is_step_materialization:
            self._recorded(event.event_specific_data.materialization)
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            self._recorded(event.event_specific_data.asset_observation)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            self._checked(event.event_specific_data)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = event.event_specific_data
            for outcome in self.by_step[event.step_key]:
                outcome.message = failure.user_failure_data.description if failure.user_failure_data else _first_cause(failure.error)
                outcome.trace = "" if failure.user_failure_data else failure.error.to_string()
                if outcome.status == "skipped":
                    outcome.status = "failed"

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
        """Every outcome, a product Dagster skipped saying which of its inputs stopped it."""
        for product in self.products:
            outcome = self.outcomes[product.id]
            stopped = [i for i in product.inputs if i in self.outcomes and self.outcomes[i].status != "published"]
            if outcome.status == "skipped" and not outcome.message and stopped:
                outcome.message = f"not built: {', '.join(stopped)} {'was' if len(stopped) == 1 else 'were'} not published in this run"
        return list(self.outcomes.values())


def _first_cause(error) -> str:
    """The message of the error that started it: Dagster wraps a step's in its own."""
    while error.cause:
        error = error.cause
    return error.message.strip()


def _without_product(outcome: Outcome) -> str:
    """The outcome's message without the product's id the error may start with."""
    return outcome.message.removeprefix(f"{outcome.product}: ")


def _checks(outcome: Outcome) -> str:
    failed = f", {len(outcome.failed)} FAILED" if outcome.failed else ""
    warned = f", {len(outcome.warned)} warn" if outcome.warned else ""
    return f"{len(outcome.passed)} ok{failed}{warned}"


def print_summary(outcomes: list[Outcome]) -> None:
    width = max(len(o.product) for o in outcomes)
    checks_width = max(len("checks"), *(len(_checks(o)) for o in outcomes))
    print(f"{'product':<{width}}  {'status':<13} {'rows':>10}  {'checks':<{checks_width}} version")
    for o in outcomes:
        rows = "" if o.rows is None else o.rows
        print(f"{o.product:<{width}}  {o.status:<13} {rows:>10}  {_checks(o):<{checks_width}} {o.version or ''}")
    for o in outcomes:
        if o.warned:
            print(f"\n{o.product}: warning: {', '.join(o.warned)} failed (severity warn: reported, not blocking)")
        if o.notes:
            print(f"\n{o.product}: note: {'; '.join(o.notes)}")
        if o.message:
            print(f"\n{o.product}: {_without_product(o)}")
    traces: dict[str, list[str]] = {}  # the products of a dbt project share their step's
    for o in outcomes:
        if o.trace:
            traces.setdefault(o.trace, []).append(o.product)
    for trace, products in traces.items():
        print(f"\n{', '.join(products)}: an unexpected error; its stack:\n{trace}", file=sys.stderr)
