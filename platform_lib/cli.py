"""`mesh`: the command line of the platform.

    mesh sample-data [--scale S]      write the sample mesh's source files
    mesh materialize [--dry-run] [--full-refresh] [-q] [DOMAIN|PRODUCT ...]  build, check and publish products in dependency order
                                      (+X: with X's upstream, X+: its downstream; selection.py)
                                      (on the executor MESH_EXECUTOR names, see executor.py)
    mesh worker [-n NAME] [-- CELERY_OPTION ...]  a Celery worker for the runs' steps (MESH_CELERY_*, see executor.py)
    mesh status [--json] [DOMAIN|PRODUCT ...]  what each port serves, its age against the freshness SLO, blocked candidates, failed runs
    mesh prepare-dbt                  parse the domains' dbt projects into their manifests
    mesh validate                     check every domain against the global policies
    mesh contract-diff --base REF     classify contract changes since a git ref; fail on unversioned breaks
    mesh new-domain NAME --owner TEAM create a domain from the template, with its code location
    mesh new-product DOMAIN NAME --kind ingest|sql|pandas|dbt [--input ID ...]
                                      add a product skeleton with its contract
    mesh lineage PRODUCT              the upstream versions a product was built from, and who read it
    mesh rollback PRODUCT [--to VERSION]  serve an earlier version's data again, as a new version
    mesh quarantine [--limit N] [--show-pii] PRODUCT  the rows a product's last ingest could not read, and why
    mesh costs [--since DATE]         compute seconds, rows written and storage bytes per domain and product
    mesh catalog [--out DIR]          static HTML catalog, JSON export and ODCS contracts of every product
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import gc
import json
import os
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

from platform_lib import sample_data, selection
from platform_lib.columns import aligned
from platform_lib.executor import SettingError, executor_name, missing_workers, worker_command
from platform_lib.mesh import LoadedDomain, load_mesh, products_by_id
from platform_lib.storage import PortError


def _above_zero(convert):
    """An argparse type: a number above 0. A scale of 0 wrote empty sample files over the good
    ones, a negative limit reached DuckDB; and a bad $MESH_SCALE, as a default parsed only when
    `sample-data` runs, no longer stops every other command."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if convert is int else ''}number above 0")
        return value

    return parse


def _moment(text: str) -> datetime:
    """An argparse type: a date or a time, ISO 8601, in UTC unless it names its zone."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no date or time: write 2026-11-01 or 2026-11-01T08:00+01:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def cmd_sample_data(args: argparse.Namespace) -> int:
    root = sample_data.generate(args.scale)
    print(f"sample source data at scale {args.scale} written to {root}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from platform_lib.governance import location_errors
    from platform_lib.materialize import buildable, in_dependency_order, materialize_distributed, materialize_products
    from platform_lib.outcomes import print_summary

    mesh = load_mesh()
    if _names_unknown(mesh, args.selection):
        return 2
    distributed = executor_name() != "in_process"
    if distributed and not os.environ.get("DAGSTER_HOME"):
        print(f"MESH_EXECUTOR={executor_name()} needs DAGSTER_HOME: an instance its workers share", file=sys.stderr)
        return 2
    refused = location_errors(mesh)
    chosen = selection.select(mesh, args.selection)
    broken = sorted(name for name in chosen.domains if name in refused)
    for name in broken:
        print(f"cannot load domain {name}: {refused[name]}", file=sys.stderr)
    wanted = [p for d in mesh if d.path.name not in refused for p in d.products if p.id in chosen.products]
    products, skipped = buildable(wanted, refused)
    if args.dry_run:
        print("\n".join(p.id for p in in_dependency_order(products)))
        for outcome in skipped:
            print(f"{outcome.product}: {outcome.message}", file=sys.stderr)
        return 2 if broken else 1 if skipped else 0  # as the run would
    if distributed and products and (why := missing_workers()):
        print(f"mesh materialize: {why}", file=sys.stderr)
        return 2
    # stdout is the summary's: what steps print there (dagster-dbt re-prints dbt's log lines,
    # a pandas transform may print) goes to stderr, as a build tool's progress does; with
    # --quiet nowhere (a failure's message is in the summary, a failed dbt run's log in its folder).
    steps_out = open(os.devnull, "w") if args.quiet else contextlib.nullcontext(sys.stderr)
    with steps_out as out, contextlib.redirect_stdout(out):
        progress = None if args.quiet else sys.stderr
        if not products:
            built = []
        elif distributed:
            with DagsterInstance.get() as instance:
                built = materialize_distributed(products, instance, progress, args.full_refresh)
        else:
            built = materialize_products(products, progress=progress, full_refresh=args.full_refresh)
    outcomes = sorted(built + skipped, key=lambda o: o.product)
    if outcomes:
        print_summary(outcomes)
    if broken:
        return 2
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_worker(args: argparse.Namespace) -> NoReturn:
    options = args.celery_options
    command, env = worker_command(args.name, options[1:] if options[:1] == ["--"] else options)
    os.execve(command[0], command, env)


def _names_unknown(mesh: list[LoadedDomain], names: list[str]) -> bool:
    """Say so if the mesh has no domain or product by some of `names`."""
    unknown = selection.unknown(mesh, names)
    if unknown:
        print(f"unknown domain(s) or product(s): {', '.join(unknown)}; the mesh has the domains "
              f"{', '.join(sorted(d.path.name for d in mesh))} (`mesh catalog` lists their products)", file=sys.stderr)
    return bool(unknown)


def cmd_status(args: argparse.Namespace) -> int:
    from platform_lib import output_port
    from platform_lib.governance import location_errors
    from platform_lib.status import PROBLEMS, port_status, status

    mesh = load_mesh()
    if _names_unknown(mesh, args.selection):
        return 2
    chosen = selection.select(mesh, args.selection)
    refused = {name: error for name, error in location_errors(mesh).items() if name in chosen.domains}
    for name, error in refused.items():  # its code location does not load: no run builds its products
        print(f"cannot load domain {name}: {error}", file=sys.stderr)
    broken = [d for d in mesh if d.error and d.path.name in chosen.domains]
    statuses = [status(p) for p in products_by_id(mesh).values() if p.id in chosen.products]
    for domain in broken:  # its ports still serve: say what they hold, without the contracts' SLOs
        named = [n for n in (n.strip("+") for n in args.selection) if n.startswith(f"{domain.path.name}.")]
        for product_id in (i for i in output_port.ports_of(domain.path.name) if not named or i in named):
            served = port_status(product_id, None)
            why = f"domain {domain.path.name} does not load: its freshness SLO is unknown"
            statuses.append(dataclasses.replace(served, why="; ".join(filter(None, (served.why, why)))))
    statuses.sort(key=lambda s: s.product)
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in statuses], indent=2))
    elif statuses:
        header = ["product", "state", "served version", "age", "freshness SLO"]
        print("\n".join(aligned([header, *([s.product, s.state, s.version, s.age, s.slo] for s in statuses)])))
        for s in statuses:
            if s.why:
                print(f"\n{s.product}: {s.why}")
    if refused:
        return 2
    return 1 if any(s.state in PROBLEMS for s in statuses) else 0


def cmd_prepare_dbt(args: argparse.Namespace) -> int:
    from platform_lib.dbt_project import prepare_all

    return 0 if prepare_all() else 2


def cmd_validate(args: argparse.Namespace) -> int:
    from platform_lib.governance import validate_mesh

    violations = validate_mesh(load_mesh())
    for violation in violations:
        print(violation)
    if violations:
        domains = len({v.domain for v in violations})
        print(f"{len(violations)} policy violation(s) in {domains} domain(s)", file=sys.stderr)
        return 1
    print("all domains follow the global policies", file=sys.stderr)
    return 0


def cmd_contract_diff(args: argparse.Namespace) -> int:
    from platform_lib.governance.diff import DiffError, diff_against
    from platform_lib.mesh import domains_dir

    try:
        report = diff_against(args.base, domains_dir(), load_mesh())
    except DiffError as error:
        print(f"cannot read the contracts at {args.base}: {error}", file=sys.stderr)
        return 2
    for change in report.changes:
        print(change)
    for problem in report.unloadable:
        print(f"not compared, the domain does not load: {problem}", file=sys.stderr)
    for violation in report.violations:
        print(violation)
    breaking = sum(c.breaking for c in report.changes)
    print(f"{len(report.changes)} change(s) since {args.base}, {breaking} breaking, "
          f"{len(report.violations)} violation(s)", file=sys.stderr)
    if report.head_unloadable:
        return 2  # its changes are unknown: neither passed nor failed
    return 1 if report.violations else 0


def _scaffold(create) -> int:
    from platform_lib.scaffold import ScaffoldError

    try:
        lines = create()
    except ScaffoldError as error:
        print(error, file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def cmd_new_domain(args: argparse.Namespace) -> int:
    from platform_lib.scaffold import new_domain

    return _scaffold(lambda: new_domain(args.name, args.owner))


def cmd_new_product(args: argparse.Namespace) -> int:
    from platform_lib.scaffold import new_product

    return _scaffold(lambda: new_product(args.domain, args.name, args.kind, args.inputs))


def cmd_lineage(args: argparse.Namespace) -> int:
    from platform_lib import output_port
    from platform_lib.contract import PRODUCT_ID
    from platform_lib.lineage import render

    known = PRODUCT_ID.match(args.product) and (output_port.current(args.product) or args.product in products_by_id(load_mesh()))
    if not known:
        print(f"no product {args.product} in the mesh or its output ports; `mesh catalog` lists them", file=sys.stderr)
        return 2
    print("\n".join(render(args.product)))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from platform_lib.rollback import RollbackError, rollback
    from platform_lib.storage import WarehouseError

    product = products_by_id(load_mesh()).get(args.product)
    if product is None:
        print(f"{args.product} is not a product of the mesh", file=sys.stderr)
        return 2
    try:
        done = rollback(product, args.to)
    except (RollbackError, WarehouseError) as error:
        print(f"mesh rollback: {error}", file=sys.stderr)
        return 2
    served, replaced = done.served, done.replaced
    print(f"{product.id}: serves {served.version}, the data of {served.restored_from} ({served.rows:,} rows, published {served.published_at}); "
          f"no longer served: {replaced.version}" + (f", the data of {replaced.restored_from}" if replaced.restored_from else ""))
    if done.stale_readers:
        readers = sorted({s.product for s in done.stale_readers})
        print(f"built from a version no longer served: {', '.join(f'{s.product} {s.version}' for s in done.stale_readers)}; "
              f"rebuild them: mesh materialize {' '.join(readers)}")
    print(f"the next run of {product.id} (its schedule's too) builds it from its sources again, and publishes what they hold if it passes the checks")
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    import duckdb

    from platform_lib import storage
    from platform_lib.factories.quarantine import quarantined

    product = products_by_id(load_mesh()).get(args.product)
    if product is None or product.source is None:
        what = "not an ingest product: only a source's rows are quarantined" if product else "not a product of the mesh"
        print(f"{args.product} is {what}", file=sys.stderr)
        return 2
    file = storage.warehouse_path(product.domain)
    found = None
    if file.exists():
        try:
            with contextlib.closing(storage.connect(product.domain)) as connection:
                found = quarantined(connection, product, args.limit)
        except storage.WarehouseError as error:  # a run holding the file past the lock wait, a damaged file
            print(f"mesh quarantine: {error}", file=sys.stderr)
            return 2
        except duckdb.Error as error:
            print(f"mesh quarantine: cannot read {file}: {str(error).splitlines()[0]}", file=sys.stderr)
            return 2
    if found is None:
        print(f"{product.id} has not been ingested here yet ({file})", file=sys.stderr)
        return 2
    total, rows = found
    pii = [] if args.show_pii else [c.name for c in product.pii_columns]
    print(f"{product.id}: {total} row(s) quarantined by its last ingest, in {storage.QUARANTINE_SCHEMA}.{product.name} of {file}")
    if rows:
        print("\n".join(_quarantine_table(rows, show_rows=not pii)))
    if rows and pii:
        print(f"rows withheld: they may hold values of PII columns {', '.join(pii)} (--show-pii prints them)")
    if total > len(rows):
        print(f"... and {total - len(rows)} more (--limit)")
    return 0


def _quarantine_table(rows: list[tuple], show_rows: bool) -> list[str]:
    """file, line, column, reason and the row as read, cut to a line each (the table has them
    whole). A terminal's text ends up in tickets and chats: a product's rows with PII are
    shown only when asked (the reason never quotes a PII column's value)."""
    from platform_lib.factories.source_files import relative_to_sources

    def cut(text: str | None, width: int) -> str:
        text = " ".join(str(text or "").split())
        return text if len(text) <= width else text[: width - 3] + "..."

    header = ["file", "line", "column", "reason", "row"]
    cells = [[relative_to_sources(f), "" if n is None else str(n), c or "", cut(e, 60), cut(r, 80) if show_rows else "(withheld)"]
             for f, n, c, e, r in rows]
    return aligned([header, *cells], right=(1,))


def cmd_costs(args: argparse.Namespace) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("set DAGSTER_HOME to the Dagster instance whose runs to account (`make dev`'s is .dagster_home)", file=sys.stderr)
        return 2
    import dagster as dg

    from platform_lib.costs import product_costs, render

    products = [p for d in load_mesh() for p in d.products]
    with dg.DagsterInstance.get() as instance:
        if args.since:
            print(f"compute and rows of the runs created since {args.since.isoformat()}; storage as it is now")
        print("\n".join(render(product_costs(products, instance, args.since))))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import dagster as dg

    from platform_lib.catalog import write_catalog
    from platform_lib.storage import data_dir

    folder = args.out or data_dir() / "catalog"
    mesh = load_mesh()
    try:
        if os.environ.get("DAGSTER_HOME"):
            with dg.DagsterInstance.get() as instance:
                written = write_catalog(mesh, folder, instance)
        else:
            print("DAGSTER_HOME is not set: the catalog shows no check results", file=sys.stderr)
            written = write_catalog(mesh, folder)
    except OSError as error:  # a folder that cannot be written: say which, not where in the code
        print(f"mesh catalog: cannot write {error.filename or folder}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"wrote {written[0]}, {written[1].name} and {len(written) - 2} ODCS contracts in {folder / 'contracts'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    if (home := os.environ.get("DAGSTER_HOME")) and not os.path.isabs(home):  # Dagster takes only an absolute one
        os.environ["DAGSTER_HOME"] = os.path.abspath(home)
    parser = argparse.ArgumentParser(prog="mesh", description="The data mesh platform's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample-data", help="write the sample mesh's source files")
    sample.add_argument(
        "--scale", type=_above_zero(float), default=os.environ.get("MESH_SCALE", "1"),
        help="1 is 1,000 customers, 10,000 orders, about 20,000 order lines; 500 is the benchmark's 10 million lines (default: $MESH_SCALE, else 1)",
    )
    sample.set_defaults(run=cmd_sample_data)
    materialize = commands.add_parser("materialize", help="build, check and publish products in dependency order")
    materialize.add_argument(
        "selection", nargs="*", metavar="DOMAIN|PRODUCT",
        help="domains, or products (orders.order_lines), to materialize (default: all); +X adds what X reads, upstream, X+ what reads X",
    )
    materialize.add_argument("--dry-run", action="store_true", help="print the products it would build, in dependency order, and build none")
    materialize.add_argument(
        "--full-refresh", action="store_true", help="read every file of an append-only source, not only those new since its published version"
    )
    materialize.add_argument("-q", "--quiet", action="store_true", help="the summary only: no progress lines on stderr, nor what the steps print (dbt's log lines)")
    materialize.set_defaults(run=cmd_materialize)
    worker = commands.add_parser("worker", help="a Celery worker for the runs' steps, on MESH_CELERY_QUEUE")
    worker.add_argument("-n", "--name", help="the worker's node name (default mesh-PID@HOST)")
    worker.add_argument("celery_options", nargs=argparse.REMAINDER, help="after --: options of `celery worker`, e.g. --concurrency 1")
    worker.set_defaults(run=cmd_worker)
    state = commands.add_parser(
        "status", help="what each product's port serves, its age against the freshness SLO, blocked candidates, failed runs; exits 1 on a problem"
    )
    state.add_argument("selection", nargs="*", metavar="DOMAIN|PRODUCT", help="as for materialize (default: all)")
    state.add_argument("--json", action="store_true", help="a JSON list, one object per product, for a monitoring probe")
    state.set_defaults(run=cmd_status)
    prepare_dbt = commands.add_parser("prepare-dbt", help="parse the domains' dbt projects into their manifests (make does this)")
    prepare_dbt.set_defaults(run=cmd_prepare_dbt)
    validate = commands.add_parser("validate", help="check every domain against the global policies")
    validate.set_defaults(run=cmd_validate)
    diff = commands.add_parser("contract-diff", help="classify contract changes since a git ref; fail on unversioned breaks")
    diff.add_argument("--base", required=True, help="git ref to compare with, e.g. main")
    diff.set_defaults(run=cmd_contract_diff)
    domain = commands.add_parser("new-domain", help="create a domain from the template, with its code location")
    domain.add_argument("name", help="the domain's name, lower case with underscores, e.g. shipping")
    domain.add_argument("--owner", required=True, help="the owning team, e.g. team-shipping")
    domain.set_defaults(run=cmd_new_domain)
    product = commands.add_parser("new-product", help="add a product skeleton with its contract")
    product.add_argument("domain", help="the domain it belongs to, e.g. shipping")
    product.add_argument("name", help="the product's name in its domain, e.g. shipments")
    product.add_argument(
        "--kind", required=True, choices=["ingest", "sql", "pandas", "dbt"],
        help="ingest reads source files, sql and pandas transform input products, dbt points at a model of the domain's dbt project",
    )
    product.add_argument("--input", dest="inputs", action="append", default=[], help="a product it reads (repeat for more)")
    product.set_defaults(run=cmd_new_product)
    lineage = commands.add_parser("lineage", help="the upstream versions a product was built from, and who read it")
    lineage.add_argument("product", help="a product id, e.g. marketing.segment_revenue")
    lineage.set_defaults(run=cmd_lineage)
    back = commands.add_parser("rollback", help="serve a product's earlier version again, at once, as a new version")
    back.add_argument("product", help="a product id, e.g. orders.raw_orders")
    back.add_argument("--to", metavar="VERSION", help="a retained version (one not retained is refused with the list of those that are); default: the newest older than the data served now")
    back.set_defaults(run=cmd_rollback)
    quarantine = commands.add_parser("quarantine", help="the rows a product's last ingest could not read, and why")
    quarantine.add_argument("product", help="an ingest product's id, e.g. orders.raw_order_lines")
    quarantine.add_argument("--limit", type=_above_zero(int), default=20, help="rows to print (default: 20)")
    quarantine.add_argument("--show-pii", action="store_true", help="print the rows as read of a product with PII columns")
    quarantine.set_defaults(run=cmd_quarantine)
    costs = commands.add_parser("costs", help="compute seconds, rows written and storage bytes per domain and product")
    costs.add_argument(
        "--since", type=_moment, help="count only the runs created from then on: a date or a time, ISO 8601, UTC unless it says (e.g. 2026-11-01)"
    )
    costs.set_defaults(run=cmd_costs)
    catalog = commands.add_parser("catalog", help="static HTML catalog, JSON export and ODCS contracts of every product")
    catalog.add_argument("--out", type=Path, help="folder to write (default: $MESH_DATA_DIR/catalog)")
    catalog.set_defaults(run=cmd_catalog)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (PortError, SettingError) as error:  # a MESH_PORTS_URL or executor setting refused, an unreadable file of a port
        print(f"mesh {args.command}: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        reason = _instance_unavailable(error)
        if reason is None:
            raise
        home = os.environ.get("DAGSTER_HOME")
        print(f"mesh {args.command}: cannot open the Dagster instance of DAGSTER_HOME={home}: {reason}", file=sys.stderr)
        return 2


def _instance_unavailable(error: Exception) -> str | None:
    """Why the instance could not be opened, if `error` says so: its PostgreSQL unreachable
    or refusing (the cause's first line, not Dagster's "too many retries"), or its
    dagster.yaml naming an environment variable that is not set. None for anything else."""
    from dagster._core.errors import DagsterInvalidConfigError

    try:
        from dagster_postgres.utils import DagsterPostgresException
    except ImportError:
        DagsterPostgresException = None
    if DagsterPostgresException is not None and isinstance(error, DagsterPostgresException):
        cause = error.__cause__
        cause = getattr(cause, "orig", None) or cause
        lines = str(cause or error).strip().splitlines()
        return f"PostgreSQL: {lines[0] if lines else error}"
    if isinstance(error, DagsterInvalidConfigError) and "environment variable" in str(error):
        lines = (line.strip() for e in error.errors for line in e.message.splitlines())
        return "; ".join(dict.fromkeys(line.split(": ", 1)[-1] for line in lines if "the environment variable" in line))
    return None


def run() -> NoReturn:
    """The `mesh` command: `main`, without two chores Python does for a long-lived program.

    A command loads Dagster, dbt and their dependencies: several hundred thousand objects
    that live until it exits. With the default thresholds the cyclic garbage collector
    scans them again and again (0.5 s of a small `mesh materialize`); with these it scans
    rarely, while collecting what dies young as before. And at exit Python frees them one
    by one (0.8 s) though the system takes the memory back anyway: so once the command is
    done, its threads joined and exit handlers run, the process ends at once.
    """
    gc.set_threshold(50_000, 20, 100)
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
