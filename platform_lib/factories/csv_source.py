"""CSV sources: DuckDB's CSV reader, told the contract's dialect, its rejects quarantined
with their lines.

Files read together must share one header, and every read of them takes the delimiter
and quote the contract states (else the sniffer guesses them, file by file). A file the
reader would read wrong without a word is refused, naming the line: a header without the
delimiter, an unclosed quote, line ends of both kinds. A number of a CSV source with a
thousands separator takes it only between groups of three digits: DuckDB's reader drops
it wherever it is. A source with such a value, or a whole-number column's value that
`storage.cast` refuses (the reader rounds 2.5 to 3), is read again row by row
(`quarantine.split_rows`), where a bad value has no line.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import duckdb

from platform_lib.contract import Column, Product
from platform_lib.factories import quarantine
from platform_lib.factories.source_files import COPY_CHUNK_BYTES, MAX_LINE_BYTES, IngestError, files_literal, first_line
from platform_lib.storage import FILES_ONLY, WHOLE_NUMBER_TYPES, candidate, cast, column_types, create_candidate, is_number_type, literal, quote

FIELD_COUNT_ERRORS = ("MISSING COLUMNS:", "TOO MANY COLUMNS:")
"""DuckDB's reasons for a CSV row that count its fields and quote none of its values: shown whole
even when the column DuckDB blames (the first one missing) is PII."""


def read(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> None:
    """The candidate from the files; the reader's rejects go to the quarantine with their lines. The reader can misread a
    number (`_misreadable`): a source with one is read again with those columns as text,
    row by row (`quarantine.split_rows`), where a bad value in them has no line."""
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
        rows = quarantine.rows_of(product, reader, "NULL::BIGINT", read_as)
        quarantine.split_rows(connection, product, rows, read_as, functools.partial(_as_number_text, product))
    connection.execute(
        # The reader lists each bad value of a line: the quarantine has a row per line (counting
        # rejects would count a row twice), with its first bad column and that column's error
        # (one error per row, so that a PII column's is withheld wherever the reason is shown).
        f"""INSERT INTO {quarantine.table(product)}
        SELECT s.file_path, e.line, arg_min(e.column_name, coalesce(e.column_idx, 0)),
            arg_min(e.error_type || ': ' || e.error_message, coalesce(e.column_idx, 0)), any_value(e.csv_line)
        FROM mesh_rejects e JOIN mesh_reject_scans s USING (scan_id, file_id)
        GROUP BY s.file_path, e.line
        ORDER BY s.file_path, e.line"""
    )
    connection.execute("DROP TABLE IF EXISTS mesh_rejects; DROP TABLE IF EXISTS mesh_reject_scans")


def fields(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path]) -> dict[Path, tuple[str, ...]]:
    """Every file has the first one's header (`_refuse_different_headers`), which the candidate keeps whole."""
    return dict.fromkeys(files, tuple(column_types(connection, candidate(product.name))))


def _csv_reader(product: Product, files: list[Path], *, numbers_as_text: bool) -> str:
    """DuckDB's CSV reader with the contract's types (the numbers it may misread as VARCHAR
    if `numbers_as_text`), storing its rejects with their lines in `mesh_rejects`."""
    as_text = _misreadable(product) if numbers_as_text else set()
    types = "{" + ", ".join(f"{literal(c.name)}: {literal('VARCHAR' if c.name in as_text else c.type)}" for c in product.columns) + "}"
    return f"""read_csv({files_literal(files)},{_dialect(product)} header = true, types = {types}, filename = 'mesh_source_file', {FILES_ONLY},
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


def _misread_by_reader(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path], read_as: dict[str, str]) -> bool:
    """Whether the CSV reader took a whole number that `cast` refuses, or a number whose
    thousands separator is out of place, or refused one grouped by no-break spaces.
    Reading the text of a few columns again costs a fraction of the typed read."""
    suspects = [c for c in product.columns if c.name in _misreadable(product) and c.name in read_as]
    if not suspects:
        return False
    texts = f"read_csv({files_literal(files)},{_layout(product)} header = true, all_varchar = true, ignore_errors = true, max_line_size = {MAX_LINE_BYTES}, {FILES_ONLY})"
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
        header = first_line(file).decode("utf-8", "replace")
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
            if stated is None:  # no dialect at all: the read fails, and says why (`read`)
                continue
            delimiter = sniffed_quote = None
        if stated is None:
            quoted = sniffed_quote == mark
        else:  # a dialect, with fields: the contract's delimiter, or one the header has
            quoted = delimiter is not None and bool(product.source.delimiter or delimiter.encode() in first_line(file))
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
    first = first_line(files[0])
    for other in files[1:]:
        if first_line(other) == first:
            continue
        theirs, ours = (list(column_types(connection, f"read_csv({literal(str(f))},{_layout(product)} header = true, {FILES_ONLY})")) for f in (other, files[0]))
        if theirs != ours:
            raise IngestError(
                f"{product.id}: {other} has the header ({', '.join(theirs)}) and {files[0]} ({', '.join(ours)}); "
                "files read together need one header, columns in the same order"
            )
