"""Ingest: source files into a candidate table, with the contract's column types.

DuckDB's own readers do the work (no pandas round trip). Rows that cannot be read
with the contract's types are not dropped: they go to `_quarantine.<product>` with
the file, the line and the reason, and are counted in the materialization metadata.
Above the contract's `max_bad_fraction` the ingest fails naming the first bad line
(without its value when the column is PII: the message reaches Dagster's event log).

Newline-delimited JSON and Parquet are first read whole by DuckDB's reader with strict
casts; only a source with a bad value is read again row by row, each value cast with
TRY_CAST: JSON line by line, so that even a line that is not JSON, or not UTF-8, is
quarantined with its number, Parquet with its row numbers. CSV uses the reader's reject
tables, which know exact line numbers; files read together must share one header, and
every read of them takes the delimiter and quote the contract states (else the sniffer
guesses them, file by file). A
JSON file that is one array, or pretty-printed, is refused: read line by line, its
records would be bad lines. So is a source without a single good row, as an empty file
is: it would replace the product, and then its consumers, with nothing.

A whole-number column (INTEGER, BIGINT, ...) takes a value only if it is that number
exactly (`storage.cast`): DuckDB's casts and readers round `2.5` to 3 and read `0x10`
as 16. A number of a CSV source with a thousands separator takes it only between groups
of three digits: DuckDB's reader drops it wherever it is. A CSV source with a value
either way is read row by row too, where they have no line.

Sources in another encoding than UTF-8, and compressed ones, are read from plain UTF-8
copies (`source_files.readable`).
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from platform_lib.contract import Column, Product
from platform_lib.factories import append_only
from platform_lib.factories.source_files import COPY_CHUNK_BYTES, IngestError, Readable, readable, relative_to_sources, source_files
from platform_lib.storage import WHOLE_NUMBER_TYPES, candidate, cast, column_types, create_candidate, is_number_type, literal, quote, relation_kind


@dataclass(frozen=True)
class BadRow:
    """Where a quarantined row is, and why; the quarantine table has the row itself."""

    file: str
    line: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {'unknown' if self.line is None else self.line}" + (f", column {self.column}" if self.column else "") + f": {self.reason}"


@dataclass(frozen=True)
class IngestReport:
    plan: append_only.Plan
    """The files read: all of them, or an append-only source's new ones."""
    rows: int
    """The rows read from them."""
    quarantined: int
    first_bad_rows: tuple[BadRow, ...] = ()
    """The first `SHOWN_BAD_ROWS` quarantined rows, in file and line order (without a PII column's value)."""
    unread_columns: tuple[str, ...] = ()
    """Columns of a JSON or Parquet source that the contract does not name (CSV's go to the schema check)."""
    column_files: dict[str, str] = field(default_factory=dict)
    """The contract's columns some files lack, and the columns the contract lacks, with those files:
    {'segment': 'not in the header of customers/customers.csv', 'tier': 'in the header of customers/new.csv'}."""
    unterminated_files: tuple[str, ...] = ()
    """CSV or JSON files, relative to the sources folder, whose last line has no newline (`unterminated`)."""

    @property
    def files(self) -> int:
        return len(self.plan.read)

    @property
    def bad_fraction(self) -> float:
        total = self.rows + self.quarantined
        return self.quarantined / total if total else 0.0

    @property
    def first_bad(self) -> str | None:
        return str(self.first_bad_rows[0]) if self.first_bad_rows else None


QUARANTINE_COLUMNS = "file VARCHAR, line BIGINT, column_name VARCHAR, error VARCHAR, raw VARCHAR"
SHOWN_BAD_ROWS = 10  # in the report, and so in the step's metadata the UI shows
FIELD_COUNT_ERRORS = ("MISSING COLUMNS:", "TOO MANY COLUMNS:")
"""DuckDB's reasons for a CSV row that count its fields and quote none of its values: shown whole
even when the column DuckDB blames (the first one missing) is PII."""
# DuckDB's CSV reader stops at 2 MB lines; a single large text field is still data.
MAX_LINE_BYTES = 64 * 1024 * 1024


def _file_list(files: list[Path]) -> str:
    return "[" + ", ".join(literal(str(p)) for p in files) + "]"


def _quarantine(product: Product) -> str:
    return f"_quarantine.{quote(product.name)}"


def _csv_reader(product: Product, files: list[Path], *, numbers_as_text: bool) -> str:
    """DuckDB's CSV reader with the contract's types (the numbers it may misread as VARCHAR
    if `numbers_as_text`), storing its rejects with their lines in `mesh_rejects`."""
    as_text = _misreadable(product) if numbers_as_text else set()
    types = "{" + ", ".join(f"{literal(c.name)}: {literal('VARCHAR' if c.name in as_text else c.type)}" for c in product.columns) + "}"
    return f"""read_csv({_file_list(files)},{_dialect(product)} header = true, types = {types}, filename = 'mesh_source_file',
        store_rejects = true, max_line_size = {MAX_LINE_BYTES}, rejects_table = 'mesh_rejects', rejects_scan = 'mesh_reject_scans')"""


def _dialect(product: Product) -> str:
    """The reader's options for how the contract says the CSV writes fields, numbers and times."""
    source = product.source
    return _layout(product) + _options({
        "decimal_separator": source.decimal_separator, "thousands": source.thousands_separator,
        "dateformat": source.date_format, "timestampformat": source.timestamp_format,
    })


def _layout(product: Product) -> str:
    """The reader's options for the delimiter and quote the contract states, for every read of
    the files (as text too): left to the sniffer, each read may guess another dialect."""
    return _options({"delim": product.source.delimiter, "quote": product.source.quote})


def _options(options: dict[str, str | None]) -> str:
    return "".join(f" {name} = {literal(value)}," for name, value in options.items() if value is not None)


def _misreadable(product: Product) -> set[str]:
    """The columns DuckDB's CSV reader may take a wrong value into: a whole-number one (it
    rounds 2.5 to 3) and, in a source with a thousands separator, every number (the reader
    drops the separator wherever it is: with `.`, 1.2 is 12)."""
    grouped = product.source.thousands_separator is not None
    return {c.name for c in product.columns if c.type in WHOLE_NUMBER_TYPES or (grouped and is_number_type(c.type))}


# A space groups thousands in French or Swedish; spreadsheets write it as a no-break space
# (U+00A0) or a narrow one (U+202F), which DuckDB's reader (one byte) does not know.
NO_BREAK_SPACES = "\u00a0\u202f"


def _separators(product: Product) -> str:
    """The characters that group thousands in the CSV source (inside a regex's [...])."""
    separator = product.source.thousands_separator
    return separator + NO_BREAK_SPACES if separator == " " else separator


def _misgrouped(product: Product, text: str) -> str:
    """SQL: whether the CSV number `text` has a thousands separator elsewhere than between
    groups of three digits before its decimals."""
    separator, decimals = f"[{_separators(product)}]", f"[{product.source.decimal_separator}]"
    grouped = rf"[+-]?\d{{1,3}}({separator}\d{{3}})+({decimals}\d*)?([eE][+-]?\d+)?"
    return f"(regexp_matches(trim({text}), {literal(separator)}) AND NOT regexp_full_match(trim({text}), {literal(grouped)}))"


def _ungrouped(product: Product, text: str) -> str:
    """SQL: the CSV number `text` without its thousands separators."""
    if product.source.thousands_separator is None:
        return text
    return f"regexp_replace({text}, {literal(f'[{_separators(product)}]')}, '', 'g')"


def _as_number_text(product: Product, column: Column, text: str) -> str:
    """SQL: the CSV number `text` as SQL casts read it: without thousands separators (NULL
    where one is out of place, so that its row is quarantined) and with a decimal point,
    but in a whole-number column, which the reader refuses a decimal comma (2,0) too."""
    number = text if product.source.thousands_separator is None else f"CASE WHEN NOT {_misgrouped(product, text)} THEN {_ungrouped(product, text)} END"
    decimal_comma = product.source.decimal_separator == "," and column.type not in WHOLE_NUMBER_TYPES
    return f"replace({number}, ',', '.')" if decimal_comma else number


def _read_csv(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """The reader's rejects go to the quarantine with their lines. The reader can misread a
    number (`_misreadable`): a source with one is read again with those columns as text,
    row by row (`_split_rows`), where a bad value in them has no line."""
    _refuse_headers_without_delimiter(product, files)
    _refuse_different_headers(connection, product, files)
    _refuse_unclosed_quotes(connection, product, files)
    reader = _csv_reader(product, files, numbers_as_text=False)
    try:
        create_candidate(connection, product.name, f"SELECT * EXCLUDE (mesh_source_file) FROM {reader}")
    except duckdb.Error:
        _refuse_mixed_line_ends(product, files)
        raise
    read_as = column_types(connection, candidate(product.name))
    if _misread_by_reader(connection, product, files, read_as):
        connection.execute("DROP TABLE IF EXISTS mesh_rejects; DROP TABLE IF EXISTS mesh_reject_scans")
        reader = _csv_reader(product, files, numbers_as_text=True)
        read_as = column_types(connection, reader)
        _split_rows(connection, product, _rows_of(product, reader, "NULL::BIGINT", read_as), read_as)
    connection.execute(
        # The reader lists each bad value of a line: the quarantine has a row per line (counting
        # rejects would count a row twice), with its first bad column and that column's error
        # (one error per row, so that a PII column's is withheld wherever the reason is shown).
        f"""INSERT INTO {_quarantine(product)}
        SELECT s.file_path, e.line, arg_min(e.column_name, coalesce(e.column_idx, 0)),
            arg_min(e.error_type || ': ' || e.error_message, coalesce(e.column_idx, 0)), any_value(e.csv_line)
        FROM mesh_rejects e JOIN mesh_reject_scans s USING (scan_id, file_id)
        GROUP BY s.file_path, e.line
        ORDER BY s.file_path, e.line"""
    )
    connection.execute("DROP TABLE IF EXISTS mesh_rejects; DROP TABLE IF EXISTS mesh_reject_scans")


def _misread_by_reader(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path], read_as: dict[str, str]) -> bool:
    """Whether the CSV reader took a whole number that `cast` refuses, or a number whose
    thousands separator is out of place, or refused one grouped by no-break spaces.
    Reading the text of a few columns again costs a fraction of the typed read."""
    suspects = [c for c in product.columns if c.name in _misreadable(product) and c.name in read_as]
    if not suspects:
        return False
    texts = f"read_csv({_file_list(files)},{_layout(product)} header = true, all_varchar = true, ignore_errors = true, max_line_size = {MAX_LINE_BYTES})"
    misread = []
    for column in suspects:
        text = quote(column.name)
        if product.source.thousands_separator == " ":  # the reader rejects those it does not know
            misread.append(f"regexp_matches({text}, {literal(f'[{NO_BREAK_SPACES}]')})")
        if product.source.thousands_separator is not None:
            misread.append(_misgrouped(product, text))
        if column.type in WHOLE_NUMBER_TYPES:
            whole = _ungrouped(product, text)
            misread.append(f"(TRY_CAST({whole} AS {column.type}) IS NOT NULL AND {cast(whole, column, strict=False)} IS NULL)")
    return connection.execute(f"SELECT EXISTS (SELECT 1 FROM {texts} WHERE {' OR '.join(misread)})").fetchone()[0]


def _refuse_mixed_line_ends(product: Product, files: list[Path]) -> None:
    """DuckDB's CSV reader cannot tell the dialect of a file whose lines end some with CRLF,
    some with LF (two exports concatenated), and says so in a page about delimiters and
    quotes: a file like that is named, with where it changes."""
    for file in files:
        with open(file, "rb") as handle:
            ends = (("CRLF" if line.endswith(b"\r\n") else "LF", number) for number, line in enumerate(handle, 1) if line.endswith(b"\n"))
            first, _ = next(ends, (None, 0))
            if changed := next(((end, number) for end, number in ends if end != first), None):
                raise IngestError(
                    f"{product.id}: {file} mixes line ends: line 1 ends with {first}, line {changed[1]} with {changed[0]}; "
                    "the CSV reader needs one kind in a file (convert it, with dos2unix say, or have the producer write one)"
                )


# The delimiters DuckDB's sniffer tries: those an unclosed quote may follow, when the
# sniffer found no delimiter, or one the file does not have.
SNIFFED_DELIMITERS = ",;\t|"
DELIMITER_NAMES = {"\t": "a tab", " ": "a space"}


def _named(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, f"'{delimiter}'")


def _refuse_headers_without_delimiter(product: Product, files: list[Path]) -> None:
    """A header without the contract's delimiter reads as one column named after the whole
    line: the schema check would then say that every column is missing, not why. Such a
    file is refused, naming its delimiter if the header has one DuckDB's sniffer knows."""
    delimiter = product.source.delimiter
    if delimiter is None:
        return
    for file in files:
        header = _first_line(file).decode("utf-8", "replace")
        if delimiter in header or header.strip().strip("\"'") in product.column_types:
            continue
        seen = [_named(d) for d in SNIFFED_DELIMITERS if d in header]
        raise IngestError(
            f"{product.id}: {file}, line 1: the contract's source.delimiter, {_named(delimiter)}, is not in the header, so each line "
            f"would read as one column, without the contract's columns {', '.join(product.column_types)}"
            + (f"; the header has {seen[0]} between its fields" if seen else "")
        )


def _refuse_unclosed_quotes(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """A field that opens a quote and never closes it has DuckDB's sniffer read the whole
    file without quoting: every quoted value keeps its quote marks, the broken row reads
    as a whole one, and nothing is quarantined or said. With the contract's quote, the
    sniffer finds no dialect instead (and DuckDB suggests unsetting the quote), or, left to
    find the delimiter, one the file does not have, reading each line as one value. Such a
    file is refused, naming the first line with a field that opens a quote and an odd
    number of them (a file read with quoting has none but inside a quoted field over
    several lines)."""
    stated = product.source.quote
    if stated == "":  # no quoting: a quote mark is text like any other
        return
    mark = stated or '"'
    for file in files:
        sniffed = f"sniff_csv({literal(str(file))},{_dialect(product)} header = true, max_line_size = {MAX_LINE_BYTES})"
        try:
            delimiter, sniffed_quote = connection.execute(f"SELECT Delimiter, Quote FROM {sniffed}").fetchone()
        except duckdb.Error:
            if stated is None:  # no dialect at all: the read fails, and says why (`_read_csv`)
                continue
            delimiter = sniffed_quote = None
        if stated is None:
            quoted = sniffed_quote == mark
        else:  # a dialect, with fields: the contract's delimiter, or one the header has
            quoted = delimiter is not None and bool(product.source.delimiter or delimiter.encode() in _first_line(file))
        if quoted or not _holds(file, mark.encode()):
            continue
        delimiters = delimiter if stated is None else product.source.delimiter or SNIFFED_DELIMITERS
        opens = re.compile(rb"(^|[" + re.escape(delimiters.encode()) + rb"])\s*" + re.escape(mark.encode()))
        with open(file, "rb") as handle:
            number = next((n for n, line in enumerate(handle, 1) if line.count(mark.encode()) % 2 and opens.search(line)), None)
        if number is None:
            continue
        read = (
            "so the CSV reader would read the file's quoted values with their quote marks" if stated is None
            else "so the CSV reader cannot read the file with the contract's source.quote (a file that quotes nothing has quote: '')"
        )
        raise IngestError(
            f"{product.id}: {file}, line {number}: a field opens a quote ({mark}) that no quote closes, {read}; "
            f"close the quote, or double a quote inside a quoted field ({mark}{mark})"
        )


def _holds(file: Path, needle: bytes) -> bool:
    with open(file, "rb") as handle:
        return any(needle in chunk for chunk in iter(lambda: handle.read(COPY_CHUNK_BYTES), b""))


def _refuse_different_headers(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """Files read together must have the first one's header. DuckDB reads a file whose
    header orders the columns differently, but gives them other types than asked for,
    and drops a column only a later file has. First lines are cheap to compare; two that
    differ are read as CSV to name their columns (if the names agree, the header is only
    written otherwise, and DuckDB's reader has the last word)."""
    first = _first_line(files[0])
    for other in files[1:]:
        if _first_line(other) == first:
            continue
        theirs, ours = (list(column_types(connection, f"read_csv({literal(str(f))},{_layout(product)} header = true)")) for f in (other, files[0]))
        if theirs != ours:
            raise IngestError(
                f"{product.id}: {other} has the header ({', '.join(theirs)}) and {files[0]} ({', '.join(ours)}); "
                "files read together need one header, columns in the same order"
            )


def unterminated(product: Product, read: Readable) -> tuple[str, ...]:
    """The text files that do not end with a newline, relative to the sources folder. A
    file read while its producer still writes it ends mid-line, and a last CSV row cut
    inside its last field still reads as a row: worth a note, though some writers simply
    leave the newline out."""
    if not FORMATS[product.source.format].lines:
        return ()

    def last_byte(file: Path) -> bytes:
        with open(file, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1)

    # An empty file (a compressed one, read from its copy) has no last line to cut.
    return tuple(relative_to_sources(str(read.source_of(f))) for f in read.files if f.stat().st_size and last_byte(f) != b"\n")


def _first_line(file: Path) -> bytes:
    with open(file, "rb") as handle:
        return handle.readline(MAX_LINE_BYTES).removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")


@dataclass(frozen=True)
class OnePassElseByRows:
    """A format DuckDB's reader takes in one pass, read again row by row (`_split_rows`) only
    when a value does not convert, so that the bad rows are quarantined with their lines."""

    one_pass: Callable[[Product, list[Path]], str]
    """The reader of the files, its values of the contract's columns as they come."""
    by_rows: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], None]

    def __call__(self, connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
        if not read_strictly(connection, product, self.one_pass(product, files)):
            self.by_rows(connection, product, files)


def read_strictly(connection: duckdb.DuckDBPyConnection, product: Product, reader: str) -> bool:
    """The candidate in one read by `reader`; False at its first value that does not convert.

    Values are cast from their text, as the row-by-row read casts them (so JSON `true`
    is not the integer 1): both reads agree on every source this one accepts. A Parquet
    column already of the contract's type is taken as it is: its text casts back to the
    same value, so the round trip would only cost time.
    """
    try:
        read_as = column_types(connection, reader)
        select = ", ".join(
            quote(c.name) if read_as.get(c.name) == c.type else f"{cast(f'{quote(c.name)}::VARCHAR', c, strict=True)} AS {quote(c.name)}"
            for c in product.columns
        )
        create_candidate(connection, product.name, f"SELECT {select} FROM {reader}")
    except duckdb.Error:
        return False
    return True


def _json_as_text(product: Product, files: list[Path]) -> str:
    as_text = "{" + ", ".join(f"{literal(c.name)}: 'VARCHAR'" for c in product.columns) + "}"
    return f"read_json({_file_list(files)}, format = 'newline_delimited', columns = {as_text})"


def _json_by_lines(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
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
    _split_rows(connection, product, rows, product.column_types)


def _parquet(product: Product, files: list[Path]) -> str:
    return f"read_parquet({_file_list(files)}, union_by_name = true)"


def _parquet_by_rows(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """Row by row, with the rows' numbers in their files."""
    reader = f"read_parquet({_file_list(files)}, filename = 'mesh_source_file', file_row_number = true, union_by_name = true)"
    _split_rows(connection, product, _rows_of(product, reader, "file_row_number + 1", product.column_types), product.column_types)


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
        FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text({_file_list(by_text)}))"""
    as_bytes = f"""
        SELECT file, line, try(decode(escaped::BLOB)) AS raw, escaped FROM (
            SELECT filename AS file, generate_subscripts(lines, 1) AS line, unnest(lines) AS escaped
            FROM (SELECT filename, string_split(content::VARCHAR, '\\x0A') AS lines FROM read_blob({_file_list(by_bytes)})))"""
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


def _csv_fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """Every file has the first one's header (`_refuse_different_headers`), which the candidate keeps whole."""
    return dict.fromkeys(files, tuple(column_types(connection, candidate(product.name))))


def _parquet_fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """From each file's footer, spelled as the contract spells them: the reader matches names without case, as DuckDB does."""
    ours = {name.lower(): name for name in product.column_types}
    return {f: tuple(ours.get(n.lower(), n) for n in column_types(connection, f"read_parquet({literal(str(f))})")) for f in files}


SAMPLED_LINES = 100  # per JSON file, for the names of its fields


def _json_fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """From the first lines of each file: a full pass would cost as much as the read."""
    fields: dict[Path, tuple[str, ...]] = {}
    for file in files:
        keys: dict[str, None] = {}  # ordered, as the file names them
        with open(file, "rb") as handle:
            for line in itertools.islice(handle, SAMPLED_LINES):
                try:
                    parsed = json.loads(line)
                except ValueError:
                    continue
                keys.update(dict.fromkeys(parsed) if isinstance(parsed, dict) else {})
        fields[file] = tuple(keys)
    return fields


def _others(product: Product, read_as: dict[str, str]) -> list[str]:
    """The columns a reader gives that the contract does not have (only CSV keeps them: the schema check reports them)."""
    return [name for name in read_as if name not in product.column_types and name != "mesh_source_file"]


def _rows_of(product: Product, reader: str, line: str, read_as: dict[str, str]) -> str:
    """`_split_rows`'s relation from a reader of typed rows with a `mesh_source_file` column."""
    fields = ", ".join(f"{quote(c.name)} := {quote(c.name)}::VARCHAR" for c in product.columns if c.name in read_as)
    others = ", ".join(f"{quote(name)} := {quote(name)}" for name in _others(product, read_as))
    return f"""
        SELECT mesh_source_file AS file, {line} AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS unreadable,
            struct_pack({fields}) AS fields{f", struct_pack({others}) AS others" if others else ""}
        FROM {reader}"""


def _split_rows(connection: duckdb.DuckDBPyConnection, product: Product, relation: str, read_as: dict[str, str]) -> None:
    """The rows of `relation` whose every value converts become the candidate; the others go
    to the quarantine, naming the first column that does not.

    `relation` has the columns file, line, raw (the row as text, JSON only), unreadable
    (why a JSON line is no row, else NULL), `fields`: a struct of one VARCHAR per contract
    column the source has, and, for a CSV source with columns its contract does not
    have, `others`: a struct of those. Values travel in structs so that a column named
    `file` or `line` keeps its own values.
    """
    connection.execute(f"CREATE OR REPLACE TEMP TABLE mesh_raw AS {relation}")
    columns = [c for c in product.columns if c.name in read_as]
    texts = {c.name: f"fields.{quote(c.name)}" for c in columns}
    numbers = {c.name: _as_number_text(product, c, texts[c.name]) if is_number_type(c.type) and read_as[c.name] == "VARCHAR" else texts[c.name] for c in columns}
    casts = {c.name: cast(numbers[c.name], c, strict=False) for c in columns}
    failed = " OR ".join(f"({texts[name]} IS NOT NULL AND {value} IS NULL)" for name, value in casts.items())
    first_failed = " ".join(
        f"WHEN {texts[name]} IS NOT NULL AND {value} IS NULL THEN {literal(name)}" for name, value in casts.items()
    )
    connection.execute(
        f"""INSERT INTO {_quarantine(product)}
        SELECT file, line,
            CASE WHEN unreadable IS NULL THEN CASE {first_failed} END END,
            coalesce(unreadable, 'value does not convert to the contract type'),
            coalesce(raw, {" || ', ' || ".join(f"coalesce({text}, 'NULL')" for text in texts.values())})
        FROM mesh_raw WHERE unreadable IS NOT NULL OR {failed}
        ORDER BY file, line"""
    )
    selected = ", ".join([f"{value} AS {quote(name)}" for name, value in casts.items()] + (["others.*"] if _others(product, read_as) else []))
    create_candidate(connection, product.name, f"SELECT {selected} FROM mesh_raw WHERE unreadable IS NULL AND NOT ({failed})")
    connection.execute("DROP TABLE mesh_raw")


def _reason(error: duckdb.Error) -> str:
    """DuckDB's message up to its first blank line, without the echoed source line (which may be huge)."""
    lines = str(error).split("\n\n")[0].splitlines()
    return " ".join(line.strip()[:300] for line in lines if not line.startswith("Original Line"))


@dataclass(frozen=True)
class Format:
    """What the ingest needs of a source format (`source.format`): a new format is an entry of
    FORMATS, a value of the contract's `Source.format`, and its readers here."""

    read: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], None]
    """The candidate and the quarantine from the files, as plain UTF-8 (`readable`)."""
    fields: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], dict[Path, tuple[str, ...]]]
    """The names of each file's columns, once the candidate is read (`_columns_compared`)."""
    fields_from: str
    """Where `fields` finds them, for messages: "the header of" a file."""
    lines: bool
    """Text in lines, whose files end with a newline unless cut while written (`unterminated`)."""


FORMATS = {
    "csv": Format(_read_csv, _csv_fields, "the header of", lines=True),
    "json": Format(OnePassElseByRows(_json_as_text, _json_by_lines), _json_fields, f"the first {SAMPLED_LINES} lines of", lines=True),
    "parquet": Format(OnePassElseByRows(_parquet, _parquet_by_rows), _parquet_fields, "the schema of", lines=False),
}


def _read(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]:
    """The candidate and the quarantine from the files, naming the files themselves in both
    and in errors; returns the report's `unread_columns`, `column_files` and `unterminated_files`."""
    source_format = FORMATS[product.source.format]
    with readable(product, files) as read:
        if source_format.lines and not product.source.transcoded:
            _refuse_utf16_read_as_utf8(product, read)
        try:
            source_format.read(connection, product, read.files)
        except duckdb.Error as error:
            shown = files[0] if len(files) == 1 else f"{len(files)} files matching {product.source.path}"
            raise IngestError(f"{product.id}: cannot read {shown}: {read.as_sources(_reason(error))}") from None
        except IngestError as error:
            raise IngestError(read.as_sources(str(error))) from None
        for copy, file in read.copied.items():
            connection.execute(f"UPDATE {_quarantine(product)} SET file = ? WHERE file = ?", [str(file), str(copy)])
        return *_columns_compared(connection, product, read), unterminated(product, read)


UTF16_BYTE_ORDER_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _refuse_utf16_read_as_utf8(product: Product, read: Readable) -> None:
    """A UTF-16 file read as UTF-8 has a NUL byte beside every ASCII character: the CSV
    reader takes it whole, its header as columns named with NUL bytes, and the JSON one
    refuses every line. Its byte order mark, or NUL bytes in its first line, give it away."""
    for file in read.files:
        first = _first_line(file)
        if first.startswith(UTF16_BYTE_ORDER_MARKS) or b"\0" in first:
            clue = "starts with a UTF-16 byte order mark" if first.startswith(UTF16_BYTE_ORDER_MARKS) else "has NUL bytes in its first line"
            raise IngestError(
                f"{product.id}: {read.source_of(file)} {clue}: UTF-16 text, read as UTF-8 (the contract's source.encoding); "
                "set source.encoding: utf-16 in the contract (utf-16-le or utf-16-be for a file without a byte order mark)"
            )


FILES_NAMED = 3  # of those lacking or having a column, in the schema check's words


def _columns_compared(connection: duckdb.DuckDBPyConnection, product: Product, read: Readable) -> tuple[tuple[str, ...], dict[str, str]]:
    """The files' own columns against the candidate's and the contract's: those the reader
    left out (a field the producer renamed leaves its old column NULL without a word, and
    its new name is the clue), and the files a schema check names a column by: those that
    lack a contract's column (a reader fills it with NULL, or leaves it out), and those that
    have one the candidate kept and the contract does not name (a CSV's extra column)."""
    source_format = FORMATS[product.source.format]
    fields = source_format.fields(connection, product, read.files)
    kept = column_types(connection, candidate(product.name))
    unread = tuple(dict.fromkeys(name for names in fields.values() for name in names if name not in kept))

    def files(column: str, having: bool) -> list[str]:
        return [relative_to_sources(str(read.source_of(f))) for f, names in fields.items() if (column in names) == having]

    where = {c: f"not in {source_format.fields_from} {_some(lacking)}" for c in product.column_types if (lacking := files(c, False))}
    where |= {c: f"in {source_format.fields_from} {_some(files(c, True))}" for c in kept if c not in product.column_types}
    return unread, where


def _some(files: list[str]) -> str:
    more = f" and {len(files) - FILES_NAMED} more" if len(files) > FILES_NAMED else ""
    return f"{', '.join(files[:FILES_NAMED])}{more}"


# How the readers name a line that is not UTF-8 (CSV's reject type, JSON's own reason).
NOT_UTF8 = ("INVALID ENCODING", "not UTF-8 text")


def quarantined(connection: duckdb.DuckDBPyConnection, product: Product, limit: int) -> tuple[int, list[tuple]] | None:
    """The number of rows the product's last ingest quarantined and the first `limit` of
    them (file, line, column, error, raw), in file and line order; None before its first."""
    if relation_kind(connection, "_quarantine", product.name) is None:
        return None
    total = connection.execute(f"SELECT count(*) FROM {_quarantine(product)}").fetchone()[0]
    rows = connection.execute(f"SELECT * FROM {_quarantine(product)} ORDER BY file, line LIMIT {int(limit)}").fetchall()
    return total, rows


@contextlib.contextmanager
def _quarantine_replaced(connection: duckdb.DuckDBPyConnection, product: Product) -> Iterator[None]:
    """A new quarantine table for a read, and the last one back if the read fails: `mesh
    quarantine` goes on listing the rows the served version was read without."""
    previous = f"{product.name}-previous"  # a hyphen: no product's name
    had = relation_kind(connection, "_quarantine", product.name) == "TABLE"
    if had:
        connection.execute(f"DROP TABLE IF EXISTS _quarantine.{quote(previous)}")
        connection.execute(f"ALTER TABLE {_quarantine(product)} RENAME TO {quote(previous)}")
    connection.execute(f"CREATE TABLE {_quarantine(product)} ({QUARANTINE_COLUMNS})")
    try:
        yield
    except BaseException:
        if had:
            connection.execute(f"DROP TABLE {_quarantine(product)}")
            connection.execute(f"ALTER TABLE _quarantine.{quote(previous)} RENAME TO {quote(product.name)}")
        raise
    if had:
        connection.execute(f"DROP TABLE _quarantine.{quote(previous)}")


def ingest(connection: duckdb.DuckDBPyConnection, product: Product, full_refresh: bool = False) -> IngestReport:
    """Build the product's candidate (`storage.candidate`) from the source files; raise IngestError above the
    threshold, or if no row is left: an export that lost its rows must not replace the product with nothing.
    An append-only source's candidate is its published version and the rows of its new files (append_only.py)."""
    _, files = source_files(product)
    plan = append_only.plan(connection, product, files, full_refresh)
    with _quarantine_replaced(connection, product):
        unread, where, cut_short = _read(connection, product, plan.read) if plan.read else ((), {}, ())
    rows = connection.execute(f"SELECT count(*) FROM {candidate(product.name)}").fetchone()[0] if plan.read else 0
    if plan.base:
        append_only.add_base(connection, product, plan)
    quarantined = connection.execute(f"SELECT count(*) FROM {_quarantine(product)}").fetchone()[0]
    shown = connection.execute(f"SELECT file, line, column_name, error FROM {_quarantine(product)} ORDER BY file, line LIMIT {SHOWN_BAD_ROWS}")
    pii = {c.name for c in product.pii_columns}
    first_bad_rows = tuple(
        # DuckDB's message may quote the value: keep its kind
        BadRow(file, line, column, f"{error.split(':', 1)[0]}: the value is withheld, the column is PII (the quarantine table has it)"
               if column in pii and not error.startswith(FIELD_COUNT_ERRORS) else error)
        for file, line, column, error in shown.fetchall()
    )
    report = IngestReport(plan, rows, quarantined, first_bad_rows, unread, where, cut_short)
    if report.bad_fraction > product.source.max_bad_fraction:
        not_utf8 = connection.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_quarantine(product)} WHERE {' OR '.join(f'starts_with(error, {literal(kind)})' for kind in NOT_UTF8)})"
        ).fetchone()[0]
        raise IngestError(
            f"{product.id}: {report.quarantined} of {report.rows + report.quarantined} source rows cannot be read "
            f"with the contract's types ({report.bad_fraction:.2%} > max_bad_fraction "
            f"{product.source.max_bad_fraction:.2%}); first bad row: {report.first_bad}. "
            f"All bad rows are in the table {_quarantine(product)} (`mesh quarantine {product.id}` lists them)."
            + (" Some lines are not UTF-8: a file in another encoding needs it in the contract (source.encoding: cp1252, say)." if not_utf8 else "")
        )
    if not rows and not plan.base:
        bad_ones = f", only bad ones ({report.quarantined} in {_quarantine(product)})" if report.quarantined else ""
        raise IngestError(
            f"{product.id}: the source has no data rows ({', '.join(map(str, files))}){bad_ones}; refusing to replace the product with nothing"
        )
    return report
