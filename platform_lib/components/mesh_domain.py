"""A mesh domain as a Dagster Component.

For platform teams that organize code locations as `dg` projects: a `defs.yaml` with

    type: platform_lib.components.MeshDomain
    attributes:
      path: ../../domains/orders     # relative to this defs.yaml

yields exactly what `domains/orders/definitions.py` yields.
"""

from __future__ import annotations

import dagster as dg

from platform_lib.domain import domain_definitions


class MeshDomain(dg.Component, dg.Model, dg.Resolvable):
    """Every data product declared in a mesh domain folder: assets, checks, schedules, automation."""

    path: str

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return domain_definitions(context.path / self.path)
