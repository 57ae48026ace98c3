"""Ingest on real files: contract types applied, bad rows quarantined with file and line, never dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import duckdb
import pytest

from pathlib import Path
from platform_lib.contract import load_domain, load_product
from platform_lib.factories.ingest import FORMATS, IngestError, ingest
from platform_lib.factories.quarantine import QUARANTINE_COLUMNS, read_strictly
from platform_lib.storage import REPO_ROOT, candidate, column_types, connect

COLUMNS = """primary_key: [id]
columns:
  - {name: id, type: BIGINT, required: true}
  - {name: amount, type: "DECIMAL(8,2)"}
  - {name: day, type: DATE}
"""


@pytest.fixture
def make_product(tmp_path, mesh_dir):
    domain_dir = tmp_path / "lab"
    (domain_dir / "products").mkdir(parents=True)
    (domain_dir / "domain.yaml").write_text("name: lab\nowner: team-lab\n")

    def make(fmt: str, path: str, max_bad: float = 0.0, columns: str = COLUMNS, encoding: str | None = None, dialect: str = ""):
        contract = domain_dir / "products" / "things.yaml"
        more = "".join(f", {field}" for field in (f"encoding: {encoding}" if encoding else "", dialect) if field)
        source = f"source: {{format: {fmt}, path: {path}, max_bad_fraction: {max_bad}{more}}}\n"
        contract.write_text("description: Things.\n" + source + columns)
        return load_product(contract, load_domain(domain_dir))

    return make


def write(mesh_dir, relative: str, text: str):
    path = mesh_dir / "sources" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def quarantine(connection) -> list[tuple]:
    return connection.execute("SELECT file, line, column_name FROM _quarantine.things ORDER BY line").fetchall()


def test_csv_bad_rows_are_quarantined_with_their_line(mesh_dir, make_product):
    path = write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,2024-01-01\nx,3.00,2024-01-02\n3,4.00,2024-01-03\n")
    product = make_product("csv", "lab/*.csv", max_bad=0.5)
    with connect("lab") as connection:
        report = ingest(connection, product)
        rows = connection.execute(f"SELECT * FROM {candidate('things')} ORDER BY id").fetchall()
        assert quarantine(connection) == [(str(path), 3, "id")]
        assert connection.execute(f"SELECT typeof(amount) FROM {candidate('things')} LIMIT 1").fetchone() == ("DECIMAL(8,2)",)
    assert (report.rows, report.quarantined, report.files) == (2, 1, 1)
    assert [r[0] for r in rows] == [1, 3]
    assert "a.csv, line 3, column id" in report.first_bad


def test_the_report_has_the_first_bad_rows_in_order_without_the_value_of_a_pii_column(mesh_dir, make_product):
    columns = COLUMNS.replace('{name: amount, type: "DECIMAL(8,2)"}', '{name: amount, type: "DECIMAL(8,2)", pii: true}')
    lines = [f"{i},{'secret' if i % 2 else '1.00'},{'2024-01-01' if i % 3 else 'soon'}" for i in range(1, 31)]
    path = write(mesh_dir, "lab/a.csv", "id,amount,day\n" + "\n".join(lines) + "\n")
    with connect("lab") as connection:
        report = ingest(connection, make_product("csv", "lab/*.csv", max_bad=0.9, columns=columns))
    # Odd ids have a PII amount that is no number, ids 3, 6, 9, ... a day that is no date:
    # 20 of 30 rows, one quarantine row each, though ids 3, 9, ... have both.
    assert (report.quarantined, report.rows) == (20, 10)
    assert [(r.file, r.line, r.column) for r in report.first_bad_rows] == [
        (str(path), line, "amount" if (line - 1) % 2 else "day") for line in (2, 4, 6, 7, 8, 10, 12, 13, 14, 16)
    ]
    assert all("secret" not in r.reason and "withheld, the column is PII" in r.reason for r in report.first_bad_rows if r.column == "amount")
    assert "soon" in report.first_bad_rows[3].reason and report.first_bad == str(report.first_bad_rows[0])


def test_csv_files_with_their_columns_in_another_order_are_refused_naming_both_headers(mesh_dir, make_product):
    first = write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,2024-01-01\n")
    second = write(mesh_dir, "lab/b.csv", "amount,id,day\n3.00,2,2024-01-02\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv"))
    assert f"{second} has the header (amount, id, day) and {first} (id, amount, day)" in str(raised.value)


def test_a_later_csv_file_with_a_column_more_is_refused_not_cut(mesh_dir, make_product):
    """DuckDB would read it and drop the column, which in the first file blocks the schema check."""
    write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,2024-01-01\n")
    second = write(mesh_dir, "lab/b.csv", "id,amount,day,extra\n2,3.00,2024-01-02,x\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv"))
    assert f"{second} has the header (id, amount, day, extra)" in str(raised.value)
    second.unlink()
    with connect("lab") as connection:
        assert ingest(connection, make_product("csv", "lab/*.csv")).rows == 1


def test_a_bad_value_of_a_pii_column_stays_out_of_the_messages(mesh_dir, make_product):
    """DuckDB's reason quotes the value; the report and the error reach Dagster's event log."""
    write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,1985-01-02\n2,3.00,1985-13-45\n")
    product = make_product("csv", "lab/*.csv", columns=COLUMNS.replace("type: DATE}", "type: DATE, pii: true}"))
    with connect("lab") as connection, pytest.raises(IngestError) as error:
        ingest(connection, product)
    assert "line 3, column day: CAST" in str(error.value) and "PII" in str(error.value)
    assert "1985-13-45" not in str(error.value)
    with connect("lab") as connection:
        assert "1985-13-45" in connection.execute("SELECT raw FROM _quarantine.things").fetchone()[0]


def test_above_the_threshold_ingest_fails_naming_file_and_line(mesh_dir, make_product):
    write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,2024-01-01\n2,lots,2024-01-02\n")
    product = make_product("csv", "lab/*.csv")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, product)
    message = str(raised.value)
    assert message.startswith("lab.things: 1 of 2 source rows cannot be read")
    assert "a.csv, line 3, column amount" in message and "_quarantine" in message


def read_both_ways(product, files, query: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """`query`'s rows after the one-pass read, after the row-by-row read, and what the latter quarantined."""
    reads = FORMATS[product.source.format].read
    with connect("lab") as connection:
        assert read_strictly(connection, product, reads.one_pass(product, files))
        one_pass = connection.execute(query).fetchall()
        connection.execute(f"CREATE OR REPLACE TABLE _quarantine.things ({QUARANTINE_COLUMNS})")
        reads.by_rows(connection, product, files)
        return one_pass, connection.execute(query).fetchall(), quarantine(connection)


def test_json_lines_that_are_not_json_or_do_not_fit_are_quarantined(mesh_dir, make_product):
    write(
        mesh_dir,
        "lab/a.jsonl",
        '{"id": 1, "amount": 2.5, "day": "2024-01-01"}\n{not json\n{"id": 3, "amount": "x", "day": "2024-01-03"}\n'
        '{"id": 4, "amount": 1, "day": "2024-01-04", "extra": true}\n[4, 1]\n',
    )
    product = make_product("json", "lab/*.jsonl", max_bad=0.7)
    with connect("lab") as connection:
        report = ingest(connection, product)
        assert [(line, column) for _, line, column in quarantine(connection)] == [(2, None), (3, "amount"), (5, None)]
        reasons = connection.execute("SELECT line, error FROM _quarantine.things WHERE column_name IS NULL ORDER BY line").fetchall()
        assert reasons == [(2, "not JSON (cut short, or not one value)"), (5, "not a JSON object")]
        assert connection.execute(f"SELECT id, amount FROM {candidate('things')} ORDER BY id").fetchall() == [
            (1, pytest.approx(2.5)), (4, pytest.approx(1)),
        ]
    assert (report.rows, report.quarantined) == (2, 3)


def test_a_json_line_that_is_not_utf8_is_quarantined_with_its_line(mesh_dir, make_product):
    """read_text refuses a whole file for one such byte; the line alone is bad, and the quarantine keeps its bytes."""
    bad = b'{"id": 2, "note": "M\xfcller"}'
    path = mesh_dir / "sources" / "lab" / "a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"id": 1, "note": "M\xc3\xbcller \\\\x0A"}\n' + bad + b'\n{"id": 3, "note": "\\"quoted\\""}\n')
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: note, type: VARCHAR}\n"
    with connect("lab") as connection:
        report = ingest(connection, make_product("json", "lab/*.jsonl", max_bad=0.5, columns=columns))
        assert connection.execute(f"SELECT id, note FROM {candidate('things')} ORDER BY id").fetchall() == [
            (1, "M\u00fcller \\x0A"), (3, '"quoted"'),
        ]
        assert connection.execute("SELECT file, line, error, raw::BLOB FROM _quarantine.things").fetchall() == [
            (str(path), 2, "not UTF-8 text", bad),
        ]
    assert report.first_bad == f"{path}, line 2: not UTF-8 text"


NAMES = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: name, type: VARCHAR}\n"


@pytest.mark.parametrize(
    "fmt, encoding, text",
    [
        ("csv", "cp1252", "id,name\r\n1,Ren\u00e9e \u20ac\r\n2,\u201cZo\u00eb\u201d\r\nx,Bad\r\n"),
        ("csv", "utf-16", "id,name\n1,Ren\u00e9e \u20ac\n2,\u201cZo\u00eb\u201d\nx,Bad"),
        ("json", "latin-1", '{"id": 1, "name": "Ren\u00e9e"}\n{"id": 2, "name": "Zo\u00eb"}\n{"id": "x", "name": "Bad"}\n'),
    ],
    ids=["csv_cp1252", "csv_utf16_no_final_newline", "json_latin1"],
)
def test_a_source_in_another_encoding_is_read_as_its_contract_names_it(mesh_dir, make_product, fmt, encoding, text):
    """Read from UTF-8 copies: rows, bad lines and notes name the source file itself."""
    path = mesh_dir / "sources" / "lab" / f"a.{fmt}"
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode(encoding))
    with connect("lab") as connection:
        report = ingest(connection, make_product(fmt, f"lab/*.{fmt}", max_bad=0.5, columns=NAMES, encoding=encoding))
        rows = connection.execute(f"SELECT id, name FROM {candidate('things')} ORDER BY id").fetchall()
        assert quarantine(connection) == [(str(path), 4 if fmt == "csv" else 3, "id")]
    expected = [(1, "Ren\u00e9e \u20ac"), (2, "\u201cZo\u00eb\u201d")] if fmt == "csv" else [(1, "Ren\u00e9e"), (2, "Zo\u00eb")]
    assert rows == expected
    assert report.unterminated_files == (("lab/a.csv",) if encoding == "utf-16" else ())


def test_a_csv_in_a_european_spreadsheets_dialect_is_read_as_its_contract_describes_it(mesh_dir, make_product):
    """Decimal commas and day-first dates: with the contract's dialect they are values, not bad rows."""
    path = write(mesh_dir, "lab/a.csv", "id;qty;amount;day;stamp\n1;2;12,50;31.12.2024;31.12.2024 13:45\n"
                 "2;1;3,00;32.12.2024;01.01.2025 00:00\n3;2,5;1,00;01.01.2024;01.01.2024 08:00\n")
    columns = (
        "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: qty, type: INTEGER}\n"
        "  - {name: amount, type: \"DECIMAL(8,2)\"}\n  - {name: day, type: DATE}\n  - {name: stamp, type: TIMESTAMP}\n"
    )
    dialect = "decimal_separator: ',', date_format: '%d.%m.%Y', timestamp_format: '%d.%m.%Y %H:%M'"
    with connect("lab") as connection:
        ingest(connection, make_product("csv", "lab/*.csv", max_bad=0.7, columns=columns, dialect=dialect))
        rows = connection.execute(f"SELECT id, qty, amount::VARCHAR, day::VARCHAR, stamp::VARCHAR FROM {candidate('things')}").fetchall()
        assert quarantine(connection) == [(str(path), 3, "day"), (str(path), 4, "qty")]
    assert rows == [(1, 2, "12.50", "2024-12-31", "2024-12-31 13:45:00")]


NOTES = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: note, type: VARCHAR}\n"


@pytest.mark.parametrize(
    "dialect, columns, text, rows",
    [
        # The sniffer tries only ',', ';', '|' and a tab: it splits these lines at ',' or ';', and takes the last for the header.
        ("delimiter: '~'", NOTES, "id~note\n1~a,b\n2~c;d\n", [(1, "a,b"), (2, "c;d")]),
        # One column: sniffed, the names are split at their commas, their header too.
        ("delimiter: ';'", "columns:\n  - {name: name, type: VARCHAR}\n", "name\nDoe, J.\nRoe, K.\n", [("Doe, J.",), ("Roe, K.",)]),
        ('delimiter: "\\t"', NOTES, "id\tnote\n1\ta;b, c\n2\td, e;f\n", [(1, "a;b, c"), (2, "d, e;f")]),
        ("delimiter: '\\t'", NOTES, "id\tnote\n1\ta;b, c\n2\td, e;f\n", [(1, "a;b, c"), (2, "d, e;f")]),
        ("quote: \"'\"", NOTES, "id,note\n1,'a,b'\n2,'it''s'\n", [(1, "a,b"), (2, "it's")]),
        ("delimiter: ',', quote: ''", NOTES, 'id,note\n1,12" pipe\n2,"quoted"\n', [(1, '12" pipe'), (2, '"quoted"')]),
    ],
    ids=["tilde", "one_column", "tab", "tab_single_quoted", "single_quote", "no_quote"],
)
def test_a_csv_is_read_in_the_delimiter_and_quote_its_contract_states(mesh_dir, make_product, dialect, columns, text, rows):
    write(mesh_dir, "lab/a.csv", text)
    with connect("lab") as connection:
        ingest(connection, make_product("csv", "lab/*.csv", columns=columns, dialect=dialect))
        assert connection.execute(f"SELECT * FROM {candidate('things')} ORDER BY 1").fetchall() == rows


def test_every_read_of_a_csv_takes_its_stated_delimiter(mesh_dir, make_product):
    """The read of whole numbers as text (`_misread_by_reader`) and of headers that differ
    (`_refuse_different_headers`) sniff otherwise: the sniffer does not try '~'."""
    columns = NOTES + "  - {name: qty, type: INTEGER}\n"
    path = write(mesh_dir, "lab/a.csv", "id~note~qty\n1~a,b~2\n2~c;d~2.5\n3~e~3\n")
    with connect("lab") as connection:
        ingest(connection, make_product("csv", "lab/*.csv", max_bad=0.5, columns=columns, dialect="delimiter: '~'"))
        assert connection.execute(f"SELECT id, note, qty FROM {candidate('things')} ORDER BY id").fetchall() == [(1, "a,b", 2), (3, "e", 3)]
        assert quarantine(connection) == [(str(path), None, "qty")]
        write(mesh_dir, "lab/b.csv", "note~id~qty\nf~4~4\n")
        with pytest.raises(IngestError, match=r"b.csv has the header \(note, id, qty\) and .*a.csv \(id, note, qty\)"):
            ingest(connection, make_product("csv", "lab/*.csv", columns=columns, dialect="delimiter: '~'"))


UNCLOSED = 'id,note\n1,"a"\n2,"b\n3,c\n4,"d"\n'


@pytest.mark.parametrize(
    "dialect, text, problem",
    [
        ("delimiter: ';'", "id,note\n1,a\n",
         "a.csv, line 1: the contract's source.delimiter, ';', is not in the header, so each line would read as one column, "
         "without the contract's columns id, note; the header has ',' between its fields"),
        ('delimiter: "\\t"', "id;note\n1;a\n", "the contract's source.delimiter, a tab, is not in the header"),
        # DuckDB's sniffer finds no dialect with this quote and delimiter, and says to unset them.
        ("delimiter: ',', quote: '\"'", UNCLOSED,
         "a.csv, line 3: a field opens a quote (\") that no quote closes, so the CSV reader cannot read the file with the "
         "contract's source.quote (a file that quotes nothing has quote: ''); close the quote, or double a quote inside a quoted field (\"\")"),
        # Left to find the delimiter, the sniffer picks '|', which the file does not have: each line is one value.
        ("quote: '\"'", UNCLOSED, "a.csv, line 3: a field opens a quote (\") that no quote closes, so the CSV reader cannot read"),
        ("delimiter: ';', quote: \"'\"", "id;note\n1;'a'\n2;'b\n3;c\n", "a.csv, line 3: a field opens a quote (') that no quote closes"),
        # The quote left to the sniffer, it reads the file without quoting, as with no dialect stated.
        ("delimiter: ','", UNCLOSED, "a.csv, line 3: a field opens a quote (\") that no quote closes, so the CSV reader would read the file's quoted values"),
    ],
    ids=["delimiter_not_in_header", "tab_not_in_header", "unclosed_quote", "unclosed_quote_delimiter_sniffed", "unclosed_single_quote", "unclosed_quote_sniffed"],
)
def test_a_csv_not_in_its_stated_dialect_is_refused_naming_file_and_line(mesh_dir, make_product, dialect, text, problem):
    write(mesh_dir, "lab/a.csv", text)
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", columns=NOTES, dialect=dialect))
    assert str(raised.value).startswith("lab.things: ") and problem in str(raised.value)


def test_a_quote_not_closed_past_the_sniffers_sample_is_a_bad_row_with_its_line(mesh_dir, make_product):
    """The sniffer reads the first 20,480 lines: past them, the reader rejects the row, which
    runs on to the next quote mark (it takes the next line with it: DuckDB counts one bad row)."""
    lines = [f'{i},"n{i}"' for i in range(1, 30_001)]
    lines[24_998] = '24999,"n24999'
    path = write(mesh_dir, "lab/a.csv", "id,note\n" + "\n".join(lines) + "\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", columns=NOTES, dialect="delimiter: ',', quote: '\"'"))
    assert f"first bad row: {path}, line 25000, column note: UNQUOTED VALUE: Value with unterminated quote found." in str(raised.value)


def test_rows_without_the_stated_delimiter_are_bad_rows_with_their_lines(mesh_dir, make_product):
    """The header has the delimiter, some rows another one: each is a row short of fields, not a file read otherwise."""
    path = write(mesh_dir, "lab/a.csv", "note;id\na;1\nb,2\nc;3\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", columns=NOTES, dialect="delimiter: ';'"))
    assert f"first bad row: {path}, line 3, column id: MISSING COLUMNS: Expected Number of Columns: 2 Found: 1" in str(raised.value)


NUMBERS = (
    "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: qty, type: INTEGER}\n"
    "  - {name: amount, type: \"DECIMAL(12,2)\"}\n  - {name: ratio, type: DOUBLE}\n  - {name: day, type: DATE}\n"
)


@pytest.mark.parametrize(
    "dialect, lines, misgrouped",
    [
        ("decimal_separator: ',', thousands_separator: '.'",
         ["1;1.234;1.234.567,50;-2.500,5;2024-01-01", "2;12;12,5;0,25;2024-01-02"], ["3;1.2;1,00;1;2024-01-03", "4;5;12.34.567;1;2024-01-04"]),
        ("thousands_separator: ','",
         ['1,"1,234","1,234,567.50","-2,500.5",2024-01-01', "2,12,12.5,0.25,2024-01-02"], ['3,"1,2",1.00,1,2024-01-03', '4,5,"1,5",1,2024-01-04']),
        ("decimal_separator: ',', thousands_separator: ' '",
         ["1; 1 234 ;1\u00a0234\u00a0567,50;-2\u202f500,5;2024-01-01", "2;12;12,5;0,25;2024-01-02"],
         ["3;1 2;1,00;1;2024-01-03", "4;5;1\u00a023,5;1;2024-01-04"]),
        ("decimal_separator: ',', thousands_separator: \"'\"",
         ["1;1'234;1'234'567,50;-2'500,5;2024-01-01", "2;12;12,5;0,25;2024-01-02"], ["3;12'34;1,00;1;2024-01-03", "4;5;'1,5;1;2024-01-04"]),
    ],
    ids=["dot", "comma", "space", "apostrophe"],
)
def test_thousands_separators_are_read_only_between_groups_of_three_digits(mesh_dir, make_product, dialect, lines, misgrouped):
    """DuckDB's reader drops a thousands separator wherever it stands (with `.`, 1.2 is 12):
    a number with one out of place is a bad row, not another number. A space stands for the
    no-break spaces a spreadsheet writes too, which DuckDB's reader does not take."""
    header = "id,qty,amount,ratio,day" if "thousands_separator: ','" == dialect else "id;qty;amount;ratio;day"
    expected = [(1, 1234, "1234567.50", -2500.5), (2, 12, "12.50", 0.25)]
    query = f"SELECT id, qty, amount::VARCHAR, ratio FROM {candidate('things')} ORDER BY id"
    with connect("lab") as connection:
        write(mesh_dir, "lab/a.csv", "\n".join([header, *lines]) + "\n")
        ingest(connection, make_product("csv", "lab/*.csv", columns=NUMBERS, dialect=dialect))
        assert connection.execute(query).fetchall() == expected
        assert quarantine(connection) == []
        path = write(mesh_dir, "lab/a.csv", "\n".join([header, *lines, *misgrouped]) + "\n")
        ingest(connection, make_product("csv", "lab/*.csv", max_bad=0.5, columns=NUMBERS, dialect=dialect))
        assert connection.execute(query).fetchall() == expected
        bad = connection.execute("SELECT file, column_name, raw FROM _quarantine.things ORDER BY raw").fetchall()
    assert [(file, column) for file, column, _ in bad] == [(str(path), "qty"), (str(path), "amount")]
    assert [raw.startswith(("3", "4")) for *_, raw in bad] == [True, True]


def compress(path: Path, data: bytes) -> Path:
    """`data` written to `path`, compressed as its suffix says."""
    import gzip

    import zstandard

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else zstandard.ZstdCompressor().compress(data))
    return path


@pytest.mark.parametrize(
    "fmt, name, encoding, text",
    [
        ("json", "a.jsonl.gz", None, '{"id": 1, "name": "Zo\u00eb"}\n{"id": 2, "name": "b"}\n{"id": "x", "name": "c"}\n{"id": 4, "name": "d"}'),
        ("csv", "a.csv.zst", None, "id,name\n1,Zo\u00eb\n2,b\nx,c\n4,d"),
        ("csv", "a.csv.gz", "cp1252", "id,name\n1,Zo\u00eb\n2,b\nx,c\n4,d"),
    ],
    ids=["json_gz", "csv_zst", "csv_gz_cp1252"],
)
def test_a_compressed_source_is_read_whole_and_its_bad_lines_keep_their_numbers(mesh_dir, make_product, fmt, name, encoding, text):
    """DuckDB's readers decompress; the row-by-row read of a JSON source and the newline note must too, naming the compressed file."""
    path = compress(mesh_dir / "sources" / "lab" / name, text.encode(encoding or "utf-8"))
    with connect("lab") as connection:
        report = ingest(connection, make_product(fmt, f"lab/*{name[1:]}", max_bad=0.5, columns=NAMES, encoding=encoding))
        rows = connection.execute(f"SELECT id, name FROM {candidate('things')} ORDER BY id").fetchall()
        assert quarantine(connection) == [(str(path), 3 if fmt == "json" else 4, "id")]
    assert rows == [(1, "Zo\u00eb"), (2, "b"), (4, "d")]
    assert report.unterminated_files == (f"lab/{name}",)


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_a_compressed_file_cut_short_fails_the_read(mesh_dir, make_product, suffix):
    """As a file still being written is: its rows so far would replace the product
    (zstandard's reader alone returns them without a word)."""
    full = compress(mesh_dir / "sources" / "lab" / f"a.csv{suffix}", b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(100000)))
    full.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", f"lab/*.csv{suffix}", columns=NAMES))
    assert str(raised.value).startswith(f"lab.things: {full} cannot be decompressed (")


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_a_compressed_empty_file_is_refused_by_name(mesh_dir, make_product, suffix):
    empty = compress(mesh_dir / "sources" / "lab" / f"a.csv{suffix}", b"")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", f"lab/*.csv{suffix}", columns=NAMES))
    assert str(raised.value) == f"lab.things: the source has no data rows ({empty}); refusing to replace the product with nothing"


def test_copies_a_killed_run_left_are_removed_by_the_next_read(mesh_dir, make_product, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    left = tmp_path / "tmp" / f"mesh-source-{dead.stdout.strip()}-abc"
    running = tmp_path / "tmp" / f"mesh-source-{os.getppid()}-def"  # a live process's, still reading
    for folder in (left, running):
        (folder / "0").mkdir(parents=True)
        (folder / "0" / "a.csv").write_text("id,name\n")
    compress(mesh_dir / "sources" / "lab" / "a.csv.gz", b"id,name\n1,a\n")
    with connect("lab") as connection:
        assert ingest(connection, make_product("csv", "lab/*.csv.gz", columns=NAMES)).rows == 1
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [running.name]


def test_a_file_and_its_compressed_namesake_are_both_read(mesh_dir, make_product):
    """Their copies, decompressed and in UTF-8, must not be one file."""
    (mesh_dir / "sources" / "lab").mkdir(parents=True)
    (mesh_dir / "sources" / "lab" / "a.csv").write_bytes("id,name\n1,Zo\u00eb\n".encode("latin-1"))
    compress(mesh_dir / "sources" / "lab" / "a.csv.gz", "id,name\n2,Ren\u00e9e\n".encode("latin-1"))
    with connect("lab") as connection:
        ingest(connection, make_product("csv", "lab/a.csv*", columns=NAMES, encoding="latin-1"))
        rows = connection.execute(f"SELECT id, name FROM {candidate('things')} ORDER BY id").fetchall()
    assert rows == [(1, "Zo\u00eb"), (2, "Ren\u00e9e")]


def test_a_zst_file_of_several_frames_is_read_whole(mesh_dir, make_product):
    import zstandard

    path = mesh_dir / "sources" / "lab" / "a.csv.zst"
    path.parent.mkdir(parents=True)
    compressor = zstandard.ZstdCompressor()
    path.write_bytes(compressor.compress(b"id,name\n1,a\n") + compressor.compress(b"2,b\n"))
    with connect("lab") as connection:
        assert ingest(connection, make_product("csv", "lab/*.csv.zst", columns=NAMES)).rows == 2


@pytest.mark.parametrize(
    "content, encoding, problem",
    [
        # cp1252 has no character 0x81: a wrong encoding in the contract reads no row at all.
        (b"id,name\n1,Ren\xe9e\n2,M\x81ller\n", "cp1252", ", line 3: byte 0x81 is not cp1252 text (character maps to <undefined>)"),
        (b"id,name\n1,a\n", "utf-16", " is not utf-16 text (UTF-16 stream does not start with BOM)"),
    ],
    ids=["a_byte_it_lacks", "utf16_without_its_byte_order_mark"],
)
def test_a_file_not_in_the_contracts_encoding_fails_the_read_naming_it(mesh_dir, make_product, content, encoding, problem):
    path = mesh_dir / "sources" / "lab" / "a.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", columns=NAMES, encoding=encoding))
    assert str(raised.value) == f"lab.things: {path}{problem}; is the contract's source.encoding right?"


def test_lines_that_are_not_utf8_hint_at_the_contracts_encoding(mesh_dir, make_product):
    path = mesh_dir / "sources" / "lab" / "a.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes("id,name\n1,Ren\u00e9e\n2,Zo\u00eb\n".encode("latin-1"))
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", columns=NAMES))
    assert f"{path}, line 2, column name: INVALID ENCODING" in str(raised.value)
    assert "a file in another encoding needs it in the contract (source.encoding: cp1252, say)" in str(raised.value)


@pytest.mark.parametrize("indent", [None, 2], ids=["one_line", "pretty_printed"])
def test_a_json_array_is_refused_not_read_as_bad_lines(mesh_dir, make_product, indent):
    """Read line by line, an array is one bad line (or a few): under max_bad_fraction its records would be lost."""
    write(mesh_dir, "lab/a.jsonl", "".join(f'{{"id": {i}, "amount": 1}}\n' for i in range(1, 101)))
    array = write(mesh_dir, "lab/b.jsonl", json.dumps([{"id": i, "amount": 1} for i in range(101, 201)], indent=indent) + "\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("json", "lab/*.jsonl", max_bad=0.99))
    assert f"lab.things: {array} is a JSON array ('[' at its start), not newline-delimited JSON" in str(raised.value)


@pytest.mark.parametrize("opening", ["{\n", '{"id": 0,\n'], ids=["brace_alone", "first_key_beside"])
def test_json_objects_spread_over_lines_are_refused_not_read_as_bad_lines(mesh_dir, make_product, opening):
    write(mesh_dir, "lab/a.jsonl", "".join(f'{{"id": {i}, "amount": 1}}\n' for i in range(1, 101)))
    spread = write(mesh_dir, "lab/b.jsonl", "\n" + opening + '  "amount": 1\n}\n' + "".join(
        json.dumps({"id": i, "amount": 1}, indent=2) + "\n" for i in range(101, 111)))
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("json", "lab/*.jsonl", max_bad=0.99))
    assert f"lab.things: {spread} is pretty-printed JSON (an object over several lines), not newline-delimited JSON" in str(raised.value)


def test_a_bad_first_json_line_is_a_bad_line_not_a_refused_file(mesh_dir, make_product):
    write(mesh_dir, "lab/a.jsonl", '{"id": 1, "amount": \n' + "".join(f'{{"id": {i}, "amount": 1}}\n' for i in range(2, 101)))
    with connect("lab") as connection:
        report = ingest(connection, make_product("json", "lab/*.jsonl", max_bad=0.05))
        assert quarantine(connection) == [(str(mesh_dir / "sources/lab/a.jsonl"), 1, None)]
    assert (report.rows, report.quarantined) == (99, 1)


@pytest.mark.parametrize(
    "fmt, name, text",
    [("csv", "a.csv", "id,amount,day\n"), ("json", "a.jsonl", "\n  \n\n")],
    ids=["csv_header", "json_blank_lines"],
)
def test_a_source_without_data_rows_is_refused_naming_its_files(mesh_dir, make_product, fmt, name, text):
    """Like an empty file: an export that lost its rows must not replace the product (and its consumers) with nothing."""
    first = write(mesh_dir, f"lab/{name}", text)
    second = write(mesh_dir, f"lab/b{name}", text)
    pattern = f"lab/*{name[-4:]}"
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product(fmt, pattern))
    assert str(raised.value) == f"lab.things: the source has no data rows ({first}, {second}); refusing to replace the product with nothing"
    write(mesh_dir, f"lab/b{name}", '{"id": 1}\n' if fmt == "json" else "id,amount,day\n1,2.50,2024-01-01\n")
    with connect("lab") as connection:
        assert ingest(connection, make_product(fmt, pattern)).rows == 1


def test_a_source_whose_every_row_is_bad_is_refused_even_when_allowed(mesh_dir, make_product):
    path = write(mesh_dir, "lab/a.csv", "id,amount,day\nx,1,2024-01-01\n")
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/*.csv", max_bad=1))
    assert f"no data rows ({path}), only bad ones (1 in _quarantine.\"things\")" in str(raised.value)


def test_a_json_line_with_a_contract_key_twice_is_quarantined(mesh_dir, make_product):
    """DuckDB's reader refuses the source; the line-by-line read must not take the first value."""
    write(mesh_dir, "lab/a.jsonl", '{"id": 1, "amount": 2}\n{"id": 2, "amount": 3, "amount": 4}\n{"id": 3, "x": 1, "x": 2}\n')
    product = make_product("json", "lab/*.jsonl", max_bad=0.5)
    with connect("lab") as connection:
        ingest(connection, product)
        assert connection.execute(f"SELECT id FROM {candidate('things')} ORDER BY id").fetchall() == [(1,), (3,)]
        assert connection.execute("SELECT line, error FROM _quarantine.things").fetchall() == [(2, "a key of the contract appears twice")]


def test_a_clean_json_source_reads_the_same_in_one_pass_as_line_by_line(mesh_dir, make_product):
    write(
        mesh_dir,
        "lab/a.jsonl",
        '{"id": 1, "amount": "2.50", "day": "2024-01-01T00:00:00"}\n\n{"id": "2", "amount": 1e1, "extra": [1]}\n'
        '{"day": null, "amount": -0.005, "id": 3}\n   \n{"id": 4, "amount": 7, "day": "2024-02-29"}',
    )
    product, files = make_product("json", "lab/*.jsonl"), [mesh_dir / "sources" / "lab" / "a.jsonl"]
    one_pass, by_row, quarantined = read_both_ways(product, files, f"SELECT * FROM {candidate('things')}")
    assert by_row == one_pass and len(one_pass) == 4 and quarantined == []


def test_a_json_value_in_a_text_column_reads_as_the_same_text_both_ways(mesh_dir, make_product):
    """Numbers, booleans, objects in a VARCHAR column: a source's values may not depend on
    whether a bad line elsewhere sent it down the line-by-line read."""
    values = ["0.00001", "1e20", "1e-7", "2.50", "1E400", "100000000000000000000000", "-9223372036854775809",
              "true", '{"x": [1, 2]}', '"text"', '"M\u00fcller \\\\x0A \\u00e9"', "null"]
    write(mesh_dir, "lab/a.jsonl", "".join(f'{{"id": {i}, "note": {v}}}\n' for i, v in enumerate(values)))
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: note, type: VARCHAR}\n"
    product, files = make_product("json", "lab/*.jsonl", columns=columns), [mesh_dir / "sources" / "lab" / "a.jsonl"]
    one_pass, by_row, _ = read_both_ways(product, files, f"SELECT note FROM {candidate('things')} ORDER BY id")
    assert by_row == one_pass
    assert one_pass[0] == ("1e-05",) and one_pass[-1] == (None,) and len(one_pass) == len(values)


WHOLE = [("7", 7), ("2.0", 2), ("1e3", 1000), ("-4", -4)]  # as written in the source, as read
NOT_WHOLE = ["2.5", "-3.5", "0x10", "0.1"]  # DuckDB's casts make them 3, -4, 16 and 0


def write_numbers(mesh_dir, fmt: str, texts: list[str]) -> Path:
    """A source with columns id and n, ids from 1, n as each format writes these texts."""
    if fmt == "csv":
        return write(mesh_dir, "lab/a.csv", "id,n\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts, 1)))
    if fmt == "json":
        as_json = [t if t[-1].isdigit() and "x" not in t else json.dumps(t) for t in texts]
        return write(mesh_dir, "lab/a.jsonl", "".join(f'{{"id": {i}, "n": {v}}}\n' for i, v in enumerate(as_json, 1)))
    target = mesh_dir / "sources" / "lab" / "a.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    values = ", ".join(f"({i}, '{t}')" for i, t in enumerate(texts, 1))
    duckdb.execute(f"COPY (SELECT * FROM (VALUES {values}) t(id, n)) TO '{target}'")
    return target


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_whole_number_column_quarantines_a_fraction_instead_of_rounding_it(mesh_dir, make_product, fmt):
    source = write_numbers(mesh_dir, fmt, [t for t, _ in WHOLE] + NOT_WHOLE)
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: n, type: INTEGER}\n"
    product = make_product(fmt, f"lab/{source.name}", max_bad=0.5, columns=columns)
    with connect("lab") as connection:
        report = ingest(connection, product)
        read = connection.execute(f"SELECT id, n FROM {candidate('things')} ORDER BY id").fetchall()
        quarantined = quarantine(connection)
    assert read == [(i, n) for i, (_, n) in enumerate(WHOLE, 1)]
    assert {column for _, _, column in quarantined} == {"n"} and report.quarantined == len(NOT_WHOLE)
    # DuckDB's CSV reader takes them all (as 3, -4, 16, 0): read again as text, they have no line
    lines = [None] * 4 if fmt == "csv" else [5, 6, 7, 8]
    assert [line for _, line, _ in quarantined] == lines
    if fmt != "csv":  # a whole source is read in one pass, as the row-by-row read reads it
        write_numbers(mesh_dir, fmt, [t for t, _ in WHOLE])
        one_pass, by_row, _ = read_both_ways(product, [source], f"SELECT id, n FROM {candidate('things')} ORDER BY id")
        assert one_pass == by_row == read


def test_a_csv_row_without_a_line_is_named_by_its_file(mesh_dir, make_product):
    source = write_numbers(mesh_dir, "csv", ["1", "2.5"])
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: n, type: INTEGER}\n"
    with connect("lab") as connection, pytest.raises(IngestError) as raised:
        ingest(connection, make_product("csv", "lab/a.csv", columns=columns))
    assert f"first bad row: {source}, line unknown, column n: value does not convert" in str(raised.value)


def test_a_csv_read_row_by_row_keeps_its_columns_for_the_schema_check(mesh_dir, make_product):
    """A fraction sends a CSV source down the row-by-row read: a column the contract lacks
    (named like that read's bookkeeping) must still reach the schema check, and a missing one stay missing."""
    write(mesh_dir, "lab/a.csv", "id,n,file\n1,2,x\n2,2.5,y\n")
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: n, type: INTEGER}\n  - {name: day, type: DATE}\n"
    with connect("lab") as connection:
        report = ingest(connection, make_product("csv", "lab/a.csv", max_bad=0.5, columns=columns))
        assert column_types(connection, candidate("things")) == {"id": "BIGINT", "n": "INTEGER", "file": "VARCHAR"}
        assert connection.execute(f"SELECT * FROM {candidate('things')}").fetchall() == [(1, 2, "x")]
    assert report.quarantined == 1


def test_a_product_is_the_same_in_every_time_zone(mesh_dir, make_product):
    """A TIMESTAMPTZ read as a TIMESTAMP is its wall clock in the session's time zone,
    which DuckDB takes from the machine: two machines would publish two values."""
    target = mesh_dir / "sources" / "lab" / "a.parquet"
    target.parent.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 1::BIGINT AS id, TIMESTAMPTZ '2024-01-01 23:30:00+00' AS placed_at) TO '{target}'")
    columns = "primary_key: [id]\ncolumns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: placed_at, type: TIMESTAMP}\n"
    contract = make_product("parquet", "lab/a.parquet", columns=columns).path
    read = f"""
from pathlib import Path
from platform_lib.contract import load_domain, load_product
from platform_lib.factories.ingest import ingest
from platform_lib.storage import candidate, connect
with connect("lab") as connection:
    ingest(connection, load_product(Path({str(contract)!r}), load_domain(Path({str(contract.parent.parent)!r}))))
    print(connection.execute(f"SELECT placed_at FROM {{candidate('things')}}").fetchone()[0])
"""
    for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
        done = subprocess.run([sys.executable, "-c", read], env={**os.environ, "TZ": zone}, capture_output=True, text=True, cwd=REPO_ROOT)
        assert done.stdout.strip() == "2024-01-01 23:30:00", (zone, done.stderr)


BOOKKEEPING_NAMES = """primary_key: [id]
columns:
  - {name: id, type: BIGINT, required: true}
  - {name: file, type: VARCHAR}
  - {name: line, type: VARCHAR}
  - {name: raw, type: VARCHAR}
  - {name: readable, type: VARCHAR}
  - {name: fields, type: VARCHAR}
  - {name: filename, type: VARCHAR}
"""


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_columns_named_like_the_row_by_row_reads_bookkeeping_keep_their_values(mesh_dir, make_product, fmt):
    """A bad row sends the source down the row-by-row read, which tracks each row's file and
    line: a product's own `file` or `line` column must still carry the source's values."""
    rows = [(1, "f1", "l1", "r1", "yes", "s1", "n1"), ("bad", "f2", "l2", "r2", "no", "s2", "n2"), (3, "f3", "l3", "r3", "yes", "s3", "n3")]
    names = ["id", "file", "line", "raw", "readable", "fields", "filename"]
    if fmt == "json":
        write(mesh_dir, "lab/a.jsonl", "".join(json.dumps(dict(zip(names, row))) + "\n" for row in rows))
    else:
        target = mesh_dir / "sources" / "lab" / "a.parquet"
        target.parent.mkdir(parents=True)
        values = ", ".join(str(tuple(map(str, row))) for row in rows)
        duckdb.execute(f"COPY (SELECT * FROM (VALUES {values}) t({', '.join(names)})) TO '{target}'")
    product = make_product(fmt, f"lab/*.{'jsonl' if fmt == 'json' else 'parquet'}", max_bad=0.5, columns=BOOKKEEPING_NAMES)
    with connect("lab") as connection:
        report = ingest(connection, product)
        published = connection.execute(f"SELECT * FROM {candidate('things')} ORDER BY id").fetchall()
    assert report.quarantined == 1
    assert published == [(1, "f1", "l1", "r1", "yes", "s1", "n1"), (3, "f3", "l3", "r3", "yes", "s3", "n3")]


def test_a_json_boolean_is_not_read_as_a_number(mesh_dir, make_product):
    write(mesh_dir, "lab/a.jsonl", '{"id": 1}\n{"id": true}\n')
    product = make_product("json", "lab/*.jsonl", max_bad=0.5)
    with connect("lab") as connection:
        ingest(connection, product)
        assert [(line, column) for _, line, column in quarantine(connection)] == [(2, "id")]


@pytest.mark.parametrize(
    "amount, day",
    [("DOUBLE", "TIMESTAMP"), ("DECIMAL(8,2)", "DATE")],  # cast from their text; of the contract's types, taken as they are
)
def test_a_clean_parquet_source_reads_the_same_in_one_pass_as_row_by_row(mesh_dir, make_product, amount, day):
    target = mesh_dir / "sources" / "lab" / "a.parquet"
    target.parent.mkdir(parents=True)
    duckdb.execute(
        f"""COPY (SELECT id, amount::{amount} AS amount, day::{day} AS day, extra FROM (VALUES
            (1::BIGINT, 1.005::DOUBLE, TIMESTAMP '2024-01-01 10:00', 'x'), (2, NULL, NULL, 'y'),
            (3, -2.5::DOUBLE, TIMESTAMP '2024-02-29 23:59:59', 'z')) t(id, amount, day, extra)) TO '{target}'"""
    )
    product = make_product("parquet", "lab/*.parquet")
    one_pass, by_row, quarantined = read_both_ways(product, [target], f"SELECT * FROM {candidate('things')}")
    assert by_row == one_pass and len(one_pass) == 3 and quarantined == []


def test_parquet_values_that_do_not_cast_are_quarantined(mesh_dir, make_product):
    target = mesh_dir / "sources" / "lab" / "a.parquet"
    target.parent.mkdir(parents=True)
    duckdb.execute(
        f"COPY (SELECT * FROM (VALUES ('1', '2.5', '2024-01-01'), ('2', 'n/a', '2024-01-02')) t(id, amount, day)) TO '{target}'"
    )
    product = make_product("parquet", "lab/*.parquet", max_bad=0.5)
    with connect("lab") as connection:
        report = ingest(connection, product)
        assert quarantine(connection) == [(str(target), 2, "amount")]
    assert (report.rows, report.quarantined) == (1, 1)


def test_a_glob_matching_nothing_names_the_pattern(mesh_dir, make_product):
    product = make_product("csv", "lab/missing_*.csv")
    with connect("lab") as connection, pytest.raises(IngestError, match=r"lab.things: no source file matches .*lab/missing_\*.csv"):
        ingest(connection, product)


def test_a_symlink_out_of_the_source_folder_is_refused(mesh_dir, make_product, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("id,amount,day\n1,1,2024-01-01\n")
    (mesh_dir / "sources" / "lab").mkdir()
    (mesh_dir / "sources" / "lab" / "link.csv").symlink_to(outside)
    product = make_product("csv", "lab/*.csv")
    with connect("lab") as connection, pytest.raises(IngestError, match=r"lab/link.csv links to .*secret.csv, outside"):
        ingest(connection, product)


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_source_columns_the_contract_does_not_read_are_reported(mesh_dir, make_product, fmt):
    """A producer renames `amount` in its second file: the contract's column is NULL there, and the new name is the clue."""
    old = [{"id": 1, "amount": 2.5, "day": "2024-01-01"}]
    new = [{"id": 2, "amount_eur": 3.5, "day": "2024-01-02", "note": "x"}]
    for name, records in (("a", old), ("b", new)):
        if fmt == "json":
            write(mesh_dir, f"lab/{name}.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        else:
            (mesh_dir / "sources" / "lab").mkdir(parents=True, exist_ok=True)
            duckdb.execute(f"COPY (SELECT * FROM read_json_auto('{write(mesh_dir, f'lab/{name}.json', json.dumps(records))}')) "
                           f"TO '{mesh_dir / 'sources' / 'lab' / f'{name}.parquet'}'")
    product = make_product(fmt, f"lab/*.{'jsonl' if fmt == 'json' else 'parquet'}")
    with connect("lab") as connection:
        report = ingest(connection, product)
        assert connection.execute(f"SELECT id, amount FROM {candidate('things')} ORDER BY id").fetchall() == [(1, 2.5), (2, None)]
    assert report.unread_columns == ("amount_eur", "note")


def test_every_source_format_of_the_contract_has_its_readers():
    """A format added to the contract's `source.format` without readers would fail at its first run."""
    from typing import get_args

    from platform_lib.contract import Source

    assert set(get_args(Source.model_fields["format"].annotation)) == set(FORMATS)


def test_a_row_short_of_a_pii_column_says_how_many_fields_it_has(mesh_dir, make_product):
    """DuckDB blames the first missing column; its reason counts fields and quotes no value."""
    write(mesh_dir, "lab/a.csv", "id,amount,day\n1,2.50,2024-01-01\n2\n")
    product = make_product("csv", "lab/*.csv", columns=COLUMNS.replace('"DECIMAL(8,2)"}', '"DECIMAL(8,2)", pii: true}'))
    with connect("lab") as connection, pytest.raises(IngestError) as error:
        ingest(connection, product)
    assert "line 3, column amount: MISSING COLUMNS: Expected Number of Columns: 3 Found: 1" in str(error.value)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@pytest.mark.parametrize("bad_row", [False, True], ids=["one pass", "row by row"])
def test_a_folder_named_like_a_partition_adds_no_column(tmp_path, monkeypatch, make_product, fmt, bad_row):
    """DuckDB's readers take a folder named `key=value` anywhere in a path for a partition
    and add a column `key`: a data folder under `/mnt/env=prod/` would give every source
    a column `env`, which no contract names (a CSV's extra column blocks its product)."""
    data = tmp_path / "env=prod" / "mesh"
    monkeypatch.setenv("MESH_DATA_DIR", str(data))
    records = [{"id": 1, "amount": "2.50", "day": "2024-01-01"}, {"id": 2, "amount": "x" if bad_row else "3.00", "day": "2024-01-02"}]
    folder = data / "sources" / "lab" / "batch=7"
    folder.mkdir(parents=True)
    if fmt == "csv":
        (folder / "a.csv").write_text("id,amount,day\n" + "".join(f"{r['id']},{r['amount']},{r['day']}\n" for r in records))
    else:
        (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        if fmt == "parquet":
            duckdb.execute(f"COPY (SELECT * FROM read_json({str(folder / 'a.jsonl')!r}, hive_partitioning = false)) TO {str(folder / 'a.parquet')!r}")
    product = make_product(fmt, f"lab/*/a.{'jsonl' if fmt == 'json' else fmt}", max_bad=0.5)
    with connect("lab") as connection:
        report = ingest(connection, product)
        assert list(column_types(connection, candidate("things"))) == ["id", "amount", "day"]
    assert (report.rows, report.quarantined, report.unread_columns, report.column_files) == (2 - bad_row, int(bad_row), (), {})
