"""`mesh status`: what each product's output port serves now, and whether that is a problem.

The answer a cron job or a monitoring probe needs without Dagster's daemon: the served
version and its age against the contract's freshness SLO, the checks of warn severity
it failed (recorded with it, as they did not keep it from being published), a candidate
its blocking checks kept from replacing it, a run that failed before its checks (an
unreadable source, an SQL error, its process killed: consumers keep the served version,
which would only turn STALE later), a product never published. The exit status says
whether any is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from platform_lib import output_port
from platform_lib.contract import Freshness, Product, parse_duration
from platform_lib.storage import PortError

OK, WARN = "ok", "warn"
UNREADABLE, BLOCKED, FAILED, STALE, NEVER = "UNREADABLE", "BLOCKED", "FAILED", "STALE", "never published"
PROBLEMS = (UNREADABLE, BLOCKED, FAILED, STALE, NEVER)
"""The states that make `mesh status` exit 1."""


@dataclass(frozen=True)
class Status:
    product: str
    state: str
    version: str = ""
    published_at: str = ""
    age_seconds: int | None = None
    slo: str = ""
    """The contract's freshness SLO: fail_after (warn warn_after)."""
    why: str = ""
    failed_warn_checks: tuple[str, ...] = ()
    """The checks of warn severity the served version failed (in `why` too), for a probe reading `--json`."""
    building_run: str = ""
    """The run building the product now (in `why` too): what it serves may soon change."""

    @property
    def age(self) -> str:
        """How long ago the served version was published, in its largest unit: 3m, 5h, 2d."""
        if self.age_seconds is None:
            return ""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.age_seconds >= size:
                return f"{self.age_seconds // size}{unit}"
        return f"{self.age_seconds}s"


def status(product: Product, now: datetime | None = None) -> Status:
    return port_status(product.id, product.freshness, now)


def port_status(product_id: str, freshness: Freshness | None, now: datetime | None = None) -> Status:
    """The port's state, against `freshness`: a product's contract's, or None when its
    domain does not load (its port is still served, and may be blocked or failed)."""
    now = now or datetime.now(timezone.utc)
    slo = ""
    if freshness:
        slo = f"{freshness.fail_after}" + (f" (warn {freshness.warn_after})" if freshness.warn_after else "")
    try:
        served, blocked, failed = output_port.current(product_id), output_port.blocked(product_id), output_port.failed(product_id)
        build = output_port.building(product_id)
    except PortError as error:  # a damaged file of the port: consumers cannot read it either
        return Status(product_id, UNREADABLE, slo=slo, why=str(error))
    stopped = f"run {blocked['run_id']} at {blocked['at']}: {', '.join(blocked['failed_checks'])} failed" if blocked else ""
    attempt = f"run {failed['run_id']} at {failed['at']} failed before its checks: {failed['error']}" if failed else ""
    rebuilt = f"run {build['run_id']} has been building it since {build['at']}" if build else ""
    running = build["run_id"] if build else ""
    if served is None:
        return Status(product_id, NEVER, slo=slo, why="; ".join(filter(None, (stopped, attempt, rebuilt))), building_run=running)
    if not served.path.is_file():  # consumers stop at it (transform.attach_inputs)
        why = f"{output_port.port_dir(product_id) / output_port.POINTER} names version {served.version}, whose data {served.path} is missing"
        return Status(product_id, UNREADABLE, served.version, served.published_at, slo=slo, why=why)
    age = now - datetime.fromisoformat(served.published_at)
    state, why = OK, []
    if blocked:
        state = BLOCKED
        why.append(f"a candidate was not published ({stopped})")
    if failed:
        state = FAILED if state == OK else state
        why.append(f"the latest {attempt}")
    if blocked or failed:
        why.append(f"consumers read {served.version}")
    if served.failed_warn_checks:  # published all the same, but the team should look
        state = WARN if state == OK else state
        why.append(f"{served.version} failed checks of warn severity: {', '.join(served.failed_warn_checks)}")
    if freshness and age > parse_duration(freshness.fail_after):
        state = STALE if state in (OK, WARN) else state  # a warning of its checks does not hide it
        why.append(f"older than its freshness SLO of {freshness.fail_after}")
    elif freshness and freshness.warn_after and age > parse_duration(freshness.warn_after):
        state = WARN if state == OK else state
        why.append(f"older than {freshness.warn_after}, its SLO's warning")
    if served.restored_from:  # `mesh rollback`: deliberate, so no state of its own, but said
        why.append(f"rolled back: {served.version} serves the data of {served.restored_from}")
    if build:
        why.append(rebuilt)
    return Status(
        product_id, state, served.version, served.published_at, int(age.total_seconds()), slo, "; ".join(why),
        tuple(served.failed_warn_checks), running,
    )
