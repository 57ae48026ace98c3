"""Federated governance: the global policies every domain follows, and the contract diff."""

from platform_lib.governance.policies import Violation
from platform_lib.governance.validate import PolicyError, enforce_at_load, location_errors, validate_mesh

__all__ = ["PolicyError", "Violation", "enforce_at_load", "location_errors", "validate_mesh"]
