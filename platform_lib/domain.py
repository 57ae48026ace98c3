"""A domain's code location: every product of `domains/<name>/` as Dagster definitions.

Loading reads only this domain's YAML (and the contracts of the inputs it reads from
other domains, for the policies), so a broken file elsewhere in the mesh cannot take
this location down, and a broken file or a policy violation here fails only this
location.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from platform_lib import dagster_pool_wait  # noqa: F401  (a run waiting for its domain's pool sleeps)
from platform_lib import output_port
from platform_lib.alerts import status_alerts
from platform_lib.contract import Domain, Product, load_domain, load_products
from platform_lib.executor import mesh_executor
from platform_lib.factories.product import blocked_inputs, blocked_message, product_asset
from platform_lib.factories.quality import asset_key
from platform_lib.governance import enforce_at_load


def product_schedule(product: Product) -> dg.ScheduleDefinition:
    """The product's cron schedule, which skips its tick while an input is blocked."""

    @dg.schedule(
        name=f"{product.name}_schedule",
        cron_schedule=product.schedule,
        target=dg.AssetSelection.assets(asset_key(product.id)),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Materializes {product.id} on its contract's schedule.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        try:
            blocked = blocked_inputs(product)
        except output_port.PortError as error:  # whether an input is blocked is unknown: build nothing on it
            return dg.SkipReason(str(error))
        if blocked:
            return dg.SkipReason(blocked_message(product, blocked))
        return dg.RunRequest()

    return _schedule


def domain_assets(domain: Domain, products: list[Product]) -> list[dg.AssetsDefinition]:
    """One asset per product, but one multi-asset per dbt project, which builds all its models in one dbt run."""
    projects: dict[str, list[Product]] = {}
    for product in products:
        if product.dbt:
            projects.setdefault(product.dbt.project, []).append(product)
    assets = [product_asset(p) for p in products if not p.dbt]
    if projects:
        from platform_lib.factories.dbt import dbt_project_assets

        assets += [dbt_project_assets(domain, name, members) for name, members in projects.items()]
    return assets


def build_definitions(domain: Domain, products: list[Product]) -> dg.Definitions:
    return dg.Definitions(
        assets=domain_assets(domain, products),
        schedules=[product_schedule(p) for p in products if p.schedule],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                f"{domain.name}_automation",
                target=dg.AssetSelection.groups(domain.name),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=15,
                description="Materializes missing products and follows input updates, never past a failed blocking check.",
            ),
            status_alerts(domain, products),
        ],
        jobs=[dg.define_asset_job(f"materialize_{domain.name}", selection=dg.AssetSelection.groups(domain.name))],
        executor=mesh_executor(),
    )


def domain_definitions(domain_dir: Path | str) -> dg.Definitions:
    """The code location of the domain in `domain_dir` (or of the file's folder)."""
    folder = Path(domain_dir)
    folder = folder.parent if folder.is_file() else folder
    domain = load_domain(folder)
    products = load_products(domain)
    enforce_at_load(domain, products)
    return build_definitions(domain, products)
