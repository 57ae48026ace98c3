"""A translated regex matches in DuckDB (RE2) exactly what the original matches in Python's `re`.

Compared with Python directly, not through Great Expectations: on pandas 3's Arrow
strings GE's regex runs in RE2 or in `re` depending on the pattern and on the data
(a value with a newline sends it to `re`), and pandas reads `{,n}` as RE2 does.
"""

from __future__ import annotations

import re

import duckdb
import pytest

from platform_lib.quality.regex import to_re2
from tests.quality.differential import POOLS

VALUES = [v for v in POOLS["s"] if v is not None] + ["a{,2}", "{,}", "aaaa", "1234"]
PATTERNS = [
    "^[a-z]{,2}$", "^a{,}$", "a{,3}?b", r"^\d{,3}$", r"^[{,2}]+$", r"^a\{,2}$", "^(ab){,1}c",
    r"^\w+$", r"\d", "c$", "(?i)^a", "^[^\\d\\]a]", "é|ü", "^$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_translation_matches_what_python_matches(pattern):
    translated = to_re2(pattern)
    assert translated is not None, f"{pattern} should translate"
    connection = duckdb.connect()
    rows = connection.execute("SELECT v, regexp_matches(v, ?) FROM unnest(?) t(v)", [translated, VALUES]).fetchall()
    differ = [(value, ours) for value, ours in rows if ours != (re.search(pattern, value) is not None)]
    assert not differ, f"{pattern} as {translated} in RE2 differs from Python on {differ}"


def test_what_has_no_translation_is_left_to_great_expectations():
    assert [to_re2(p) for p in (r"\s", r"\bword", "(?=a)b", r"(a)\1", "(?a)\\w")] == [None] * 5
