"""Ingest: source files into a candidate table, with the contract's column types.

DuckDB's own readers do the work (no pandas round trip), one module per format
(`FORMATS`). Rows that cannot be read with the contract's types are not dropped: they go
to `_quarantine.<product>` with the file, the line and the reason (`quarantine.py`), and
are counted in the materialization metadata. Above the contract's `max_bad_fraction` the
ingest fails naming the first bad line (without its value when the column is PII: the
message reaches Dagster's event log). So does a source without a single good row, as an
empty file is: it would replace the product, and then its consumers, with nothing.

A whole-number column (INTEGER, BIGINT, ...) takes a value only if it is that number
exactly (`storage.cast`): DuckDB's casts and readers round `2.5` to 3 and read `0x10`
as 16.

Sources in another encoding than UTF-8, and compressed ones, are read from plain UTF-8
copies (`source_files.readable`).
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from platform_lib.contract import Product
from platform_lib.factories import append_only, csv_source, json_source, parquet_source, quarantine
from platform_lib.factories.quarantine import OnePassElseByRows
from platform_lib.factories.source_files import IngestError, Readable, files_of, first_line, readable, relative_to_sources
from platform_lib.storage import candidate, column_types, literal


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


SHOWN_BAD_ROWS = 10  # in the report, and so in the step's metadata the UI shows

# How the readers name a line that is not UTF-8 (CSV's reject type, JSON's own reason).
NOT_UTF8 = ("INVALID ENCODING", "not UTF-8 text")


def ingest(connection: duckdb.DuckDBPyConnection, product: Product, full_refresh: bool = False) -> IngestReport:
    """Build the product's candidate (`storage.candidate`) from the source files; raise IngestError above the
    threshold, or if no row is left: an export that lost its rows must not replace the product with nothing.
    An append-only source's candidate is its published version and the rows of its new files (append_only.py)."""
    files = files_of(product)
    plan = append_only.plan(connection, product, files, full_refresh)
    with quarantine.replaced(connection, product):
        unread, where, cut_short = _read(connection, product, plan.read) if plan.read else ((), {}, ())
    rows = connection.execute(f"SELECT count(*) FROM {candidate(product.name)}").fetchone()[0] if plan.read else 0
    if plan.base:
        append_only.add_base(connection, product, plan)
    quarantined = connection.execute(f"SELECT count(*) FROM {quarantine.table(product)}").fetchone()[0]
    shown = connection.execute(f"SELECT file, line, column_name, error FROM {quarantine.table(product)} ORDER BY file, line LIMIT {SHOWN_BAD_ROWS}")
    pii = {c.name for c in product.pii_columns}
    first_bad_rows = tuple(
        # DuckDB's message may quote the value: keep its kind
        BadRow(file, line, column, f"{error.split(':', 1)[0]}: the value is withheld, the column is PII (the quarantine table has it)"
               if column in pii and not error.startswith(csv_source.FIELD_COUNT_ERRORS) else error)
        for file, line, column, error in shown.fetchall()
    )
    report = IngestReport(plan, rows, quarantined, first_bad_rows, unread, where, cut_short)
    if report.bad_fraction > product.source.max_bad_fraction:
        not_utf8 = connection.execute(
            f"SELECT EXISTS (SELECT 1 FROM {quarantine.table(product)} WHERE {' OR '.join(f'starts_with(error, {literal(kind)})' for kind in NOT_UTF8)})"
        ).fetchone()[0]
        raise IngestError(
            f"{product.id}: {report.quarantined} of {report.rows + report.quarantined} source rows cannot be read "
            f"with the contract's types ({report.bad_fraction:.2%} > max_bad_fraction "
            f"{product.source.max_bad_fraction:.2%}); first bad row: {report.first_bad}. "
            f"All bad rows are in the table {quarantine.table(product)} (`mesh quarantine {product.id}` lists them)."
            + (" Some lines are not UTF-8: a file in another encoding needs it in the contract (source.encoding: cp1252, say)." if not_utf8 else "")
        )
    if not rows and not plan.base:
        bad_ones = f", only bad ones ({report.quarantined} in {quarantine.table(product)})" if report.quarantined else ""
        raise IngestError(
            f"{product.id}: the source has no data rows ({', '.join(map(str, files))}){bad_ones}; refusing to replace the product with nothing"
        )
    return report


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
            connection.execute(f"UPDATE {quarantine.table(product)} SET file = ? WHERE file = ?", [str(file), str(copy)])
        return *_columns_compared(connection, product, read), unterminated(product, read)


@dataclass(frozen=True)
class Format:
    """What the ingest needs of a source format (`source.format`): a new format is an entry of
    FORMATS, a value of the contract's `Source.format`, and a module of its readers (as
    `csv_source.py`, `json_source.py`, `parquet_source.py`)."""

    read: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], None]
    """The candidate and the quarantine from the files, as plain UTF-8 (`readable`)."""
    fields: Callable[[duckdb.DuckDBPyConnection, Product, list[Path]], dict[Path, tuple[str, ...]]]
    """The names of each file's columns, once the candidate is read (`_columns_compared`)."""
    fields_from: str
    """Where `fields` finds them, for messages: "the header of" a file."""
    lines: bool
    """Text in lines, whose files end with a newline unless cut while written (`unterminated`)."""


FORMATS = {
    "csv": Format(csv_source.read, csv_source.fields, "the header of", lines=True),
    "json": Format(OnePassElseByRows(json_source.one_pass, json_source.by_lines), json_source.fields, f"the first {json_source.SAMPLED_LINES} lines of", lines=True),
    "parquet": Format(OnePassElseByRows(parquet_source.one_pass, parquet_source.by_rows), parquet_source.fields, "the schema of", lines=False),
}


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


def _reason(error: duckdb.Error) -> str:
    """DuckDB's message up to its first blank line, without the echoed source line (which may be huge)."""
    lines = str(error).split("\n\n")[0].splitlines()
    return " ".join(line.strip()[:300] for line in lines if not line.startswith("Original Line"))


UTF16_BYTE_ORDER_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _refuse_utf16_read_as_utf8(product: Product, read: Readable) -> None:
    """A UTF-16 file read as UTF-8 has a NUL byte beside every ASCII character: the CSV
    reader takes it whole, its header as columns named with NUL bytes, and the JSON one
    refuses every line. Its byte order mark, or NUL bytes in its first line, give it away."""
    for file in read.files:
        first = first_line(file)
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
