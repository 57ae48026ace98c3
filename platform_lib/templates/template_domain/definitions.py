"""This domain's Dagster code location: built from the YAML files in this folder."""

from platform_lib.domain import domain_definitions

defs = domain_definitions(__file__)
