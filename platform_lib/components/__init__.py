"""Dagster Components for projects managed with `dg`: the same factories, declared in defs.yaml."""

from platform_lib.components.mesh_domain import MeshDomain

__all__ = ["MeshDomain"]
