"""Every domain's products in one Dagster repository, for runs that cross domains.

`mesh materialize` builds products of several domains in one run, so Dagster orders
them by their dependencies. In-process runs need no importable definitions; runs on
an executor with separate processes (Celery workers) do: each worker rebuilds the job
from this module. Code locations stay one per domain; this is only the CLI's job.
"""

from __future__ import annotations

import dagster as dg

from platform_lib.domain import domain_assets
from platform_lib.executor import mesh_executor
from platform_lib.mesh import load_mesh

JOB = "mesh"


def build() -> dg.Definitions:
    assets = [a for d in load_mesh() if d.domain for a in domain_assets(d.domain, list(d.products))]
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.all(), executor_def=mesh_executor())
    return dg.Definitions(assets=assets, jobs=[job])


defs = build()
