"""Every domain's products in one Dagster repository, for runs that cross domains.

`mesh materialize` builds products of several domains in one run, so Dagster orders
them by their dependencies. In-process runs need no importable definitions; runs on
an executor with separate processes (Celery workers) do: each worker rebuilds the job
from this module. Code locations stay one per domain; this is only the CLI's job.
"""

from __future__ import annotations

import dagster as dg

from platform_lib.executor import mesh_executor
from platform_lib.factories.product import product_asset
from platform_lib.mesh import load_mesh

JOB = "mesh"


def build() -> dg.Definitions:
    products = [p for d in load_mesh() for p in d.products]
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.all(), executor_def=mesh_executor())
    return dg.Definitions(assets=[product_asset(p) for p in products], jobs=[job])


defs = build()
