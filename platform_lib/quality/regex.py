"""Translate GE's regexes (Python `re`) into DuckDB's (RE2) without changing what they match.

Both search anywhere in the value, and share most syntax, but Python's `\\d` and `\\w`
match any Unicode digit or letter where RE2's match ASCII only, and Python's `$` also
matches before a final newline, and Python reads `{,n}` as `{0,n}` where RE2 reads
it as text. The classes become Unicode property classes, `$` becomes `\\n?$` and `{,`
becomes `{0,`; `\\s` and `\\b` (whose Unicode definitions RE2 cannot spell),
lookaround and backreferences return None, and the rule runs in GE.
"""

from __future__ import annotations

import re
from functools import cache

import duckdb

from platform_lib.storage import literal

WORD = r"\p{L}\p{N}_"
OUTSIDE_CLASS = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": f"[{WORD}]", "W": f"[^{WORD}]"}
INSIDE_CLASS = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": WORD}
UNTRANSLATABLE = set("sSbBAZ")
NO_LOWER_BOUND = re.compile(r"\{,(\d*)\}")  # Python's `{,n}` and `{,}`


@cache
def _re2() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@cache
def to_re2(pattern: str) -> str | None:
    """The RE2 pattern matching what `pattern` matches in Python, or None if there is none."""
    try:
        flags = re.compile(pattern).flags
    except re.error:
        return None
    if flags & re.ASCII:
        return None
    translated = _translate(pattern, end_of_text=not flags & re.MULTILINE)
    if translated is None:
        return None
    try:
        _re2().execute(f"SELECT regexp_matches('', {literal(translated)})")  # no parameters: binding imports pandas
    except duckdb.Error:  # lookaround, backreferences, possessive quantifiers...
        return None
    return translated


def _translate(pattern: str, end_of_text: bool) -> str | None:
    out, index, in_class = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped in UNTRANSLATABLE or (in_class and escaped == "W"):
                return None
            table = INSIDE_CLASS if in_class else OUTSIDE_CLASS
            out.append(table.get(escaped, char + escaped))
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            index += 1
            for literal_start in ("^", "]"):  # `[]...]` and `[^]...]` start with a literal `]`
                if index < len(pattern) and pattern[index] == literal_start:
                    out.append(literal_start)
                    index += 1
            continue
        if char == "]" and in_class:
            in_class = False
        if char == "$" and not in_class and end_of_text:
            char = r"\n?$"
        if char == "{" and not in_class and (bound := NO_LOWER_BOUND.match(pattern, index)):
            out.append(f"{{0,{bound[1]}}}")
            index = bound.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)
