"""Materialize products in one Dagster run, in dependency order across domains.

One Dagster run holds all the selected products, so Dagster orders them by their
dependencies and skips everything downstream of a failed blocking check. The run is
recorded in the instance of DAGSTER_HOME when it is set, so the UI shows it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Collection, Iterator
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TextIO

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from platform_lib.contract import Product, load_domain
from platform_lib.domain import domain_assets
from platform_lib.factories.append_only import FULL_REFRESH_TAG
from platform_lib.factories.quality import asset_key
from platform_lib.mesh import input_graph
from platform_lib.outcomes import Outcome, RunOutcomes, outcomes_of
from platform_lib.progress import PROGRESS, Progress
from platform_lib.processes import process_gone, this_process
from platform_lib.storage import REPO_ROOT


JOB = "mesh_materialize"
LOCAL_INSTANCE = REPO_ROOT / "deploy" / "dagster.local.yaml"


def _instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance, else an ephemeral one.

    A new DAGSTER_HOME gets the local instance's configuration, as `make dev` gives it
    (the domains' DuckDB pools, no telemetry), not Dagster's defaults. Dagster creates its
    SQLite tables on first use without a lock: two runs starting on a fresh DAGSTER_HOME
    both try, and one fails with "table already exists". Serialize that.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / ".mesh-instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (Path(home) / "dagster.yaml").exists() and LOCAL_INSTANCE.exists():
            shutil.copyfile(LOCAL_INSTANCE, Path(home) / "dagster.yaml")
        return dg.DagsterInstance.get()


def mesh_assets(products: list[Product]) -> list[dg.AssetsDefinition]:
    """The assets building `products`, domain by domain (a dbt project is one multi-asset)."""
    folders = {p.path.parent.parent: [q for q in products if q.domain == p.domain] for p in products}
    return [a for folder, members in folders.items() for a in domain_assets(load_domain(folder), members)]


def in_dependency_order(products: list[Product]) -> list[Product]:
    """Each product after those of the list it reads; products ready together by id."""
    by_id = {p.id: p for p in products}
    order = TopologicalSorter(input_graph(by_id))
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
    cause: dict[str, str] = {}  # product id -> the refused domain it depends on
    skipped = []
    for product_id in TopologicalSorter(input_graph(by_id)).static_order():
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


def release_dead_runs(instance: dg.DagsterInstance) -> None:
    """Fail the runs of `mesh` processes on this host that died, and give back their pool slots.

    Dagster frees a run's pool slots when the run ends. A run executing in a process that is
    killed (SIGKILL, out of memory) never ends, so every later run of its domain would wait
    for the slot forever. (One killed before it started holds none, but would stay
    "not started" in the run list for good.)
    """
    unfinished = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    started = RunsFilter(statuses=unfinished, tags={"mesh/host": socket.gethostname()})
    for record in instance.get_run_records(filters=started):
        run = record.dagster_run
        process = {name: run.tags.get(f"mesh/{name}") for name in ("host", "pid", "pid_namespace", "started")}
        if (process["pid"] or "").isdigit() and process_gone({**process, "pid": int(process["pid"])}):
            instance.report_run_failed(run, message=f"the mesh process {process['pid']} running it died")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


DEAD_RUNS_EVERY_SECONDS = 5


@contextlib.contextmanager
def releasing_dead_runs(instance: dg.DagsterInstance) -> Iterator[None]:
    """`release_dead_runs` before a run, and every few seconds while it goes: a run killed
    while it held a slot this one waits for would otherwise hold it up for good."""
    if instance.is_ephemeral:
        yield
        return
    release_dead_runs(instance)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(DEAD_RUNS_EVERY_SECONDS):
            try:
                release_dead_runs(instance)
            except Exception:  # a busy instance (SQLite locked): the next look will do
                continue

    watcher = threading.Thread(target=watch, name="mesh-dead-runs", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def materialize_products(
    products: list[Product], instance: dg.DagsterInstance | None = None, progress: TextIO | None = None, full_refresh: bool = False
) -> list[Outcome]:
    """One in-process run building `products`; with `progress`, a line there as each step
    starts and one for each product as its step ends; `full_refresh` reads every file of
    an append-only source."""
    assets = mesh_assets(products)
    run_config = _run_config()
    loggers = {"console": dg.colored_console_logger}
    if progress:
        loggers[PROGRESS] = Progress(RunOutcomes(products, assets), progress).logger()
        run_config["loggers"][PROGRESS] = {}
    job = dg.Definitions(assets=assets, jobs=[dg.define_asset_job(JOB)], loggers=loggers).resolve_job_def(JOB)
    tags = {"mesh/cli": "materialize", **_process_tags(), **_refresh(full_refresh)}
    with contextlib.nullcontext(instance) if instance else _instance() as instance, releasing_dead_runs(instance):  # a caller's stays open
        result = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags, run_config=run_config)
    return outcomes_of(result, products, assets)


def _process_tags() -> dict[str, str]:
    """This process (`processes.this_process`) as tags of a run started here, which `release_dead_runs` reads back."""
    return {f"mesh/{name}": str(value) for name, value in this_process().items() if value is not None}


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

    repository = ReconstructableRepository.for_module(whole_mesh.__name__, "defs", working_directory=str(REPO_ROOT))
    assets = mesh_assets(products)
    # Tagged with this process as an in-process run is, so a later `mesh materialize` on this
    # host fails the run and frees its pool slots if this process is killed.
    tags = {"mesh/cli": "materialize", "mesh/invocation": uuid.uuid4().hex, **_process_tags(), **_refresh(full_refresh)}
    with contextlib.ExitStack() as following:
        following.enter_context(releasing_dead_runs(instance))
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
