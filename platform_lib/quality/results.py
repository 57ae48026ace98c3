"""The shape of a rule's outcome, the same whichever engine computed it (GE's shape)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from platform_lib.contract import QualityRule


def plain(value: Any) -> Any:
    """A result's value as plain Python, the same from either engine: DuckDB hands back
    Decimals, GE numpy scalars and tuples; NaN from either is None."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, str):  # a numpy scalar
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class RuleResult:
    rule: QualityRule
    success: bool
    engine: str
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    partial_unexpected_list: list[Any] = field(default_factory=list)
    observed_value: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    """GE's other result fields where it reports some (missing_count, mismatched columns)."""

    @property
    def examples(self) -> list[Any]:
        """The unexpected values sampled, each once: GE samples rows, and a bad value on
        many rows would fill the sample alone."""
        return list({repr(v): v for v in self.partial_unexpected_list}.values())

    @property
    def summary(self) -> str:
        """One line for the check's result and failure messages, which name the check beside it."""
        parts = ["passed" if self.success else "FAILED"]
        if self.details.get("exception"):
            engine = "DuckDB" if self.engine == "duckdb" else "Great Expectations"
            parts.append(f"{engine} could not compute it: {self.details['exception']}")
        if self.unexpected_count is not None and self.element_count is not None:
            parts.append(f"{self.unexpected_count} of {self.element_count} rows unexpected")
        elif self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} unexpected distinct values")
        if self.details.get("missing_count"):
            parts.append(f"{self.details['missing_count']} expected values missing")
        if self.observed_value is not None:
            parts.append(f"observed {self.observed_value!r}")
        if self.partial_unexpected_list:
            parts.append(f"e.g. {self.examples[:5]!r}")
        return ", ".join(parts)
