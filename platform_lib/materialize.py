"""Materialize products in-process, in dependency order across domains, and summarize.

One Dagster run holds all the selected products, so Dagster orders them by their
dependencies and skips everything downstream of a failed blocking check. The run is
recorded in the instance of DAGSTER_HOME when it is set, so the UI shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import dagster as dg

from platform_lib.contract import Product
from platform_lib.factories.product import product_asset
from platform_lib.factories.quality import asset_key


@dataclass
class Outcome:
    product: str
    status: str = "skipped"
    rows: int | None = None
    version: str | None = None
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "published" and not self.failed


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def materialize_products(products: list[Product], instance: dg.DagsterInstance | None = None) -> list[Outcome]:
    outcomes = {p.id: Outcome(p.id) for p in products}
    by_key = {asset_key(p.id): outcomes[p.id] for p in products}
    by_step = {"__".join(key.path): outcome for key, outcome in by_key.items()}
    result = dg.materialize(
        [product_asset(p) for p in products],
        instance=instance or _instance(),
        raise_on_error=False,
        tags={"mesh/cli": "materialize"},
        run_config={"loggers": {"console": {"config": {"log_level": os.environ.get("MESH_LOG_LEVEL", "WARNING")}}}},
    )
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        outcome = by_key[materialization.asset_key]
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        outcome.rows = metadata.get("dagster/row_count")
        outcome.status = "published" if metadata.get("published") else "not published"
        outcome.version = metadata.get("published_version") or metadata.get("served_version")
    for evaluation in result.get_asset_check_evaluations():
        outcome = by_key[evaluation.asset_key]
        (outcome.passed if evaluation.passed else outcome.failed).append(evaluation.check_name)
    for event in result.get_step_failure_events():
        outcome = by_step[event.step_key]
        failure = event.event_specific_data
        outcome.message = failure.user_failure_data.description if failure.user_failure_data else failure.error.message.strip()
        if outcome.status == "skipped":
            outcome.status = "failed"
    return list(outcomes.values())


def print_summary(outcomes: list[Outcome]) -> None:
    width = max(len(o.product) for o in outcomes)
    print(f"{'product':<{width}}  {'status':<13} {'rows':>10}  checks        version")
    for o in outcomes:
        checks = f"{len(o.passed)} ok" + (f", {len(o.failed)} FAILED" if o.failed else "")
        rows = "" if o.rows is None else o.rows
        print(f"{o.product:<{width}}  {o.status:<13} {rows:>10}  {checks:<13} {o.version or ''}")
    for o in outcomes:
        if o.message:
            print(f"\n{o.product}: {o.message}")
