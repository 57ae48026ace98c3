"""Newline-delimited JSON sources: DuckDB's JSON reader in one pass, values read as text and
cast as the contract says; a source with a bad value is read again line by line, so that
even a line that is not JSON, or not UTF-8, is quarantined with its number.

A file that is one JSON array, or pretty-printed, is refused: read line by line, its
records would be bad lines.
"""

from __future__ import annotations

import codecs
import itertools
import json
from pathlib import Path

import duckdb

from platform_lib.contract import Product
from platform_lib.factories import quarantine
from platform_lib.factories.source_files import IngestError, files_literal
from platform_lib.storage import FILES_ONLY, literal

SAMPLED_LINES = 100  # per JSON file, for the names of its fields


def one_pass(product: Product, files: list[Path]) -> str:
    """DuckDB's reader of the files, every value as text: `quarantine.read_strictly` casts them."""
    as_text = "{" + ", ".join(f"{literal(c.name)}: 'VARCHAR'" for c in product.columns) + "}"
    return f"read_json({files_literal(files)}, format = 'newline_delimited', columns = {as_text}, {FILES_ONLY})"


def by_lines(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """Line by line, so that even a line that is not JSON, or not UTF-8, is quarantined with its number."""
    _refuse_json_not_one_object_per_line(product, files)
    # json_transform converts a value to text as read_json does (1e-05, not 0.00001):
    # a source's values must not depend on whether a bad line sent it down this path.
    # A contract's key twice in one line is refused, as read_json refuses it:
    # json_transform would quietly take the first value.
    as_text = literal(json.dumps({c.name: "VARCHAR" for c in product.columns}))
    names = "[" + ", ".join(literal(c.name) for c in product.columns) + "]"
    contract_keys = f"list_filter(json_keys(raw), k -> list_contains({names}, k))"
    rows = f"""
        SELECT file, line, coalesce(raw, escaped) AS raw, unreadable,
            CASE WHEN unreadable IS NULL THEN json_transform(raw, {as_text}) END AS fields
        FROM (
            SELECT file, line, raw, escaped, CASE
                WHEN raw IS NULL THEN 'not UTF-8 text'
                WHEN NOT json_valid(raw) THEN 'not JSON (cut short, or not one value)'
                WHEN json_type(raw) <> 'OBJECT' THEN 'not a JSON object'
                WHEN len({contract_keys}) <> len(list_distinct({contract_keys})) THEN 'a key of the contract appears twice'
            END AS unreadable
            FROM ({_lines(files)}) WHERE trim(coalesce(raw, escaped)) <> ''
        )"""
    quarantine.split_rows(connection, product, rows, product.column_types)


def fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """From the first lines of each file: a full pass would cost as much as the read."""
    found: dict[Path, tuple[str, ...]] = {}
    for file in files:
        keys: dict[str, None] = {}  # ordered, as the file names them
        with open(file, "rb") as handle:
            for line in itertools.islice(handle, SAMPLED_LINES):
                try:
                    parsed = json.loads(line)
                except ValueError:
                    continue
                keys.update(dict.fromkeys(parsed) if isinstance(parsed, dict) else {})
        found[file] = tuple(keys)
    return found


def _lines(files: list[Path]) -> str:
    """Each line of the files with its file and number: `raw`, its text, or NULL if it is not
    UTF-8; `escaped`, the line as DuckDB writes bytes as text (`\\xFC`, `\\x22` for a quote).

    `read_text` refuses a whole file for one byte that is not UTF-8: such a file is split
    escaped, so that its other lines still decode and a bad one is kept exactly
    (`escaped::BLOB` gives its bytes back). Only such a file: the escaped split is slower.
    """
    utf8 = {f: _is_utf8(f) for f in files}
    by_text, by_bytes = [f for f in files if utf8[f]], [f for f in files if not utf8[f]]
    as_text = f"""
        SELECT filename AS file, generate_subscripts(lines, 1) AS line, unnest(lines) AS raw, NULL::VARCHAR AS escaped
        FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text({files_literal(by_text)}))"""
    as_bytes = f"""
        SELECT file, line, try(decode(escaped::BLOB)) AS raw, escaped FROM (
            SELECT filename AS file, generate_subscripts(lines, 1) AS line, unnest(lines) AS escaped
            FROM (SELECT filename, string_split(content::VARCHAR, '\\x0A') AS lines FROM read_blob({files_literal(by_bytes)})))"""
    return " UNION ALL ".join(lines for lines, subset in ((as_text, by_text), (as_bytes, by_bytes)) if subset)


def _is_utf8(file: Path) -> bool:
    """Whether `read_text` takes the file; checked a chunk at a time, in a fraction of the time of the read."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(file, "rb") as handle:
        try:
            while chunk := handle.read(4 * 1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _refuse_json_not_one_object_per_line(product: Product, files: list[Path]) -> None:
    """A file that is one JSON array (`[{...}, {...}]`), or whose objects are spread over
    several lines (pretty-printed), would be read as bad lines, one per line: under
    `max_bad_fraction`, its records would be lost without a word. Pretty-printed: its
    first line opens an object it does not close, and the next line opens none."""
    for file in files:
        first, second = _opening_lines(file)
        if first.startswith(b"["):
            shape = "a JSON array ('[' at its start)"
        elif first.startswith(b"{") and not second.startswith(b"{") and not _is_json(first):
            shape = "pretty-printed JSON (an object over several lines)"
        else:
            continue
        raise IngestError(f"{product.id}: {file} is {shape}, not newline-delimited JSON (format json reads one JSON object per line)")


def _opening_lines(file: Path) -> tuple[bytes, bytes]:
    """The file's first two lines that are not blank, stripped (a byte order mark too); b'' for a missing one."""
    found = []
    with open(file, "rb") as handle:
        for line in handle:
            if stripped := line.removeprefix(b"\xef\xbb\xbf").strip():
                found.append(stripped)
                if len(found) == 2:
                    break
    first, second, *_ = [*found, b"", b""]
    return first, second


def _is_json(text: bytes) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
