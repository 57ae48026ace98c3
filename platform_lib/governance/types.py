"""Which column type changes widen: every value of the old type fits the new one, unchanged."""

from __future__ import annotations

import re

INTEGER_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
    "HUGEINT": (-(2**127), 2**127 - 1),
    "UTINYINT": (0, 2**8 - 1),
    "USMALLINT": (0, 2**16 - 1),
    "UINTEGER": (0, 2**32 - 1),
    "UBIGINT": (0, 2**64 - 1),
    "UHUGEINT": (0, 2**128 - 1),
}
# Integers a float type holds exactly: 24 bits of mantissa for FLOAT, 53 for DOUBLE.
FLOAT_EXACT = {"FLOAT": 2**24, "DOUBLE": 2**53}
DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


def _decimal(type_name: str) -> tuple[int, int] | None:
    match = DECIMAL.match(type_name.replace(" ", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def widens(old: str, new: str) -> bool:
    """True if `new` can hold every value of `old` exactly (types as DuckDB spells them)."""
    if old == new:
        return True
    if old in INTEGER_RANGES:
        low, high = INTEGER_RANGES[old]
        if new in INTEGER_RANGES:
            new_low, new_high = INTEGER_RANGES[new]
            return new_low <= low and high <= new_high
        if new in FLOAT_EXACT:
            return max(-low, high) <= FLOAT_EXACT[new]
        if decimal := _decimal(new):
            precision, scale = decimal
            return len(str(max(-low, high))) <= precision - scale
        return False
    if old == "FLOAT":
        return new == "DOUBLE"
    old_decimal, new_decimal = _decimal(old), _decimal(new)
    if old_decimal and new_decimal:
        (precision, scale), (new_precision, new_scale) = old_decimal, new_decimal
        return new_scale >= scale and new_precision - new_scale >= precision - scale
    return False
