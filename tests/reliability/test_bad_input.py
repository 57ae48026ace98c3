"""The bad-input catalogue: each case breaks one input for real, on a published mesh.

For every case: (a) the error or failed check names the file, product or field at
fault; (b) the broken product still serves its last good version; (c) products that
do not depend on it, in its own and in other domains, still publish, and every other
domain's code location still loads; (d) once the input is repaired, a rerun publishes.
"""

from __future__ import annotations

import gzip
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import pytest
import yaml

from platform_lib import output_port
from platform_lib.domain import domain_definitions
from platform_lib.factories import quarantine
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import literal, warehouse_path

from tests.reliability.damage import CUSTOMERS_CSV, ORDER_LINES_1, ORDER_LINES_2, column, edit_contract, rewrite_csv
from tests.reliability.ports import served


@dataclass(frozen=True)
class Case:
    name: str
    product: str
    damage: Callable[[Path, Path], None]  # (sources folder, domains folder)
    names: tuple[str, ...]  # what the error must mention
    not_shown: tuple[str, ...] = ()  # what neither the error nor the port's failed.json may show

    def __str__(self) -> str:
        return self.name


def more_bad_lines_than_allowed(sources: Path, domains: Path, make_line: Callable[[int], str]) -> None:
    """Append just enough bad lines to customers.csv to pass raw_customers' max_bad_fraction."""
    contract = yaml.safe_load((domains / "customers/products/raw_customers.yaml").read_text())
    path = sources / CUSTOMERS_CSV
    good = len(path.read_text().splitlines()) - 1
    count = math.floor(good * contract["source"].get("max_bad_fraction", 0)) + 1
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(make_line(90_000 + n) + "\n" for n in range(count))


def latin1_names(sources: Path, _domains: Path) -> None:
    """An export in Latin-1 instead of UTF-8: every name carries a byte that is not UTF-8."""
    path = sources / CUSTOMERS_CSV
    lines = path.read_text(encoding="utf-8").splitlines()
    renamed = [lines[0]] + [line.replace("Customer ", "Müller ") for line in lines[1:]]
    path.write_bytes("\n".join(renamed).encode("latin-1") + b"\n")


def latin1_skus(sources: Path, _domains: Path) -> None:
    """One of the order service's two files written in Latin-1: every line carries a byte that is not UTF-8."""
    path = sources / ORDER_LINES_2
    path.write_bytes(path.read_text(encoding="utf-8").replace('"SKU-', '"St\u00fcck-').encode("latin-1"))


def utf16_names(sources: Path, _domains: Path) -> None:
    """The CRM's export now comes as UTF-16 (with its byte order mark), the contract still reading UTF-8."""
    path = sources / CUSTOMERS_CSV
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))


def line_ends_mixed(sources: Path, _domains: Path) -> None:
    """Two exports concatenated: the first half's lines end with CRLF, the rest with LF."""
    path = sources / CUSTOMERS_CSV
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_bytes(("\r\n".join(lines[:50]) + "\r\n" + "\n".join(lines[50:]) + "\n").encode("utf-8"))


def quote_not_closed(sources: Path, _domains: Path) -> None:
    """The CRM now quotes every name, and one of them, on line 51, lost its closing quote."""
    path = sources / CUSTOMERS_CSV
    lines = path.read_text(encoding="utf-8").splitlines()
    quoted = [lines[0]] + [",".join(f'"{v}"' if i == 2 else v for i, v in enumerate(line.split(","))) for line in lines[1:]]
    quoted[50] = quoted[50].replace('",', ",", 1)
    path.write_text("\n".join(quoted) + "\n", encoding="utf-8")


def quote_not_closed_quote_stated(sources: Path, domains: Path) -> None:
    """As above, the contract stating the CRM's dialect: DuckDB's sniffer then finds none, and says to unset it."""
    quote_not_closed(sources, domains)
    edit_contract(domains, "customers.raw_customers", lambda c: c["source"].update(delimiter=",", quote='"'))


def semicolons_not_stated_comma(sources: Path, domains: Path) -> None:
    """The contract states the CRM's comma; its new export separates fields with semicolons."""
    path = sources / CUSTOMERS_CSV
    path.write_text(path.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")
    edit_contract(domains, "customers.raw_customers", lambda c: c["source"].update(delimiter=","))


def json_array(sources: Path, _domains: Path) -> None:
    """The order service's export switched to one JSON array: read line by line, it is a single bad line."""
    path = sources / ORDER_LINES_1
    with duckdb.connect() as connection:
        rows = connection.execute(f"SELECT to_json(list(r)) FROM read_json({literal(str(path))}) r").fetchone()[0]
    path.write_text(rows + "\n", encoding="utf-8")


def gzip_cut_short(sources: Path, domains: Path) -> None:
    """The CRM's export now comes gzipped, and was picked up while still being written."""
    path = sources / CUSTOMERS_CSV
    compressed = gzip.compress(path.read_bytes())
    path.unlink()
    path.with_name(path.name + ".gz").write_bytes(compressed[: len(compressed) // 2])
    edit_contract(domains, "customers.raw_customers", lambda c: c["source"].update(path="customers/*.csv.gz"))


def symlink_outside(sources: Path, _domains: Path) -> None:
    secret = sources.parent.parent / "secret.csv"
    shutil.copy(sources / CUSTOMERS_CSV, secret)
    (sources / "customers" / "more.csv").symlink_to(secret)


def orders_as_text(sources: Path, _domains: Path) -> None:
    """The order service changed customer_id from a number to a text code."""
    with duckdb.connect() as connection:
        for path in sorted((sources / "orders").glob("orders_*.parquet")):
            connection.execute(
                f"""COPY (SELECT * REPLACE ('C-' || customer_id AS customer_id) FROM read_parquet({literal(str(path))}))
                TO {literal(str(path))} (FORMAT parquet)"""
            )


def orders_without_status(sources: Path, _domains: Path) -> None:
    """The order service's second export dropped the status column."""
    path = sources / "orders" / "orders_2.parquet"
    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT * EXCLUDE (status) FROM read_parquet({literal(str(path))})) TO {literal(str(path))} (FORMAT parquet)")


def sku_renamed(sources: Path, _domains: Path) -> None:
    """The order service renamed product_sku to sku in one of its two files."""
    path = sources / ORDER_LINES_2
    path.write_text(path.read_text(encoding="utf-8").replace('"product_sku":', '"sku":'), encoding="utf-8")


def clv_returning(expression: str) -> Callable[[Path, Path], None]:
    """The customer lifetime value transform, its result (`result`) changed to `expression`."""

    def damage(_sources: Path, domains: Path) -> None:
        path = domains / "marketing/products/customer_lifetime_value.py"
        path.write_text(
            path.read_text() + "\n\n_counted = transform\n\n\ndef transform(inputs):\n"
            f"    result = _counted(inputs)\n    return {expression}\n"
        )

    return damage


def append_to(file: str, text: str) -> Callable[[Path, Path], None]:
    def damage(_sources: Path, domains: Path) -> None:
        path = domains / file
        path.write_text(path.read_text() + text)

    return damage


CASES = [
    Case(
        "malformed_csv_row",
        "customers.raw_customers",
        lambda s, d: more_bad_lines_than_allowed(s, d, lambda n: f"{n},x{n}@example.com,Extra,NL,2020-01-01,consumer,surplus,fields"),
        ("customers.raw_customers", "customers.csv", "line"),
    ),
    Case("missing_column", "customers.raw_customers", lambda s, d: rewrite_csv(s, "SELECT * EXCLUDE (segment) FROM t"),
         ("customers.raw_customers", "schema", "missing column segment (not in the header of customers/customers.csv)")),
    Case("column_missing_from_one_parquet_file", "orders.raw_orders", orders_without_status,
         ("orders.raw_orders", "schema", "required column status has", "(not in the schema of orders/orders_2.parquet)")),
    Case("json_field_renamed_in_one_file", "orders.raw_order_lines", sku_renamed,
         ("orders.raw_order_lines", "schema", "required column product_sku has",
          "(not in the first 100 lines of orders/order_lines_2.jsonl)")),
    Case("extra_column", "customers.raw_customers", lambda s, d: rewrite_csv(s, "SELECT *, 'gold' AS loyalty_tier FROM t"),
         ("customers.raw_customers", "schema", "unexpected column loyalty_tier (in the header of customers/customers.csv)")),
    Case("changed_column_type", "orders.raw_orders", orders_as_text,
         ("orders.raw_orders", "orders_1.parquet", "customer_id", "line 1")),
    Case("nulls_in_key", "customers.raw_customers",
         lambda s, d: rewrite_csv(s, "SELECT * REPLACE (CASE WHEN customer_id = '7' THEN NULL ELSE customer_id END AS customer_id) FROM t"),
         ("customers.raw_customers", "primary_key", "null key", "customer_id")),
    Case("duplicate_keys", "customers.raw_customers", lambda s, d: rewrite_csv(s, "SELECT * FROM t UNION ALL (SELECT * FROM t LIMIT 3)"),
         ("customers.raw_customers", "primary_key", "duplicated key", "customer_id")),
    Case("export_cut_short", "customers.raw_customers", lambda s, d: rewrite_csv(s, "SELECT * FROM t LIMIT 10"),
         ("customers.raw_customers", "row_count", "10 rows against", "more than max_row_drop 0.5 allows")),
    Case("empty_file", "customers.raw_customers", lambda s, d: (s / CUSTOMERS_CSV).write_bytes(b""),
         ("customers.raw_customers", "customers.csv", "empty")),
    Case("header_only_csv", "customers.raw_customers", lambda s, d: rewrite_csv(s, "SELECT * FROM t LIMIT 0"),
         ("customers.raw_customers", "customers.csv", "no data rows", "refusing to replace the product with nothing")),
    Case("utf16_read_as_utf8", "customers.raw_customers", utf16_names,
         ("customers.raw_customers", "customers.csv", "UTF-16 byte order mark", "source.encoding: utf-16")),
    Case("line_ends_mixed", "customers.raw_customers", line_ends_mixed,
         ("customers.raw_customers", "customers.csv", "line 1 ends with CRLF, line 51 with LF")),
    Case("csv_quote_not_closed", "customers.raw_customers", quote_not_closed,
         ("customers.raw_customers", "customers.csv, line 51", "a field opens a quote", "that no quote closes")),
    Case("csv_quote_not_closed_quote_stated", "customers.raw_customers", quote_not_closed_quote_stated,
         ("customers.raw_customers", "customers.csv, line 51", "a field opens a quote", "cannot read the file with the contract's source.quote")),
    Case("csv_not_in_the_stated_delimiter", "customers.raw_customers", semicolons_not_stated_comma,
         ("customers.raw_customers", "customers.csv, line 1", "the contract's source.delimiter, ',', is not in the header",
          "without the contract's columns customer_id, email", "the header has ';' between its fields")),
    Case("json_array", "orders.raw_order_lines", json_array,
         ("orders.raw_order_lines", "order_lines_1.jsonl", "is a JSON array", "not newline-delimited JSON")),
    Case("non_utf8_json_lines", "orders.raw_order_lines", latin1_skus,
         ("orders.raw_order_lines", "order_lines_2.jsonl, line 1", "not UTF-8 text")),
    Case("gzip_cut_short", "customers.raw_customers", gzip_cut_short,
         ("customers.raw_customers", "customers.csv.gz", "cannot be decompressed", "still being written")),
    Case("missing_file", "orders.raw_orders", lambda s, d: [p.unlink() for p in (s / "orders").glob("orders_*.parquet")],
         ("orders.raw_orders", "orders_*.parquet", "no source file")),
    Case("non_utf8_bytes", "customers.raw_customers", latin1_names,
         ("customers.raw_customers", "customers.csv", "line", "full_name", "INVALID ENCODING")),
    Case("contract_wrong_field", "customers.raw_customers",
         lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: c.update(ownr="team-x")),
         ("raw_customers.yaml", "customers.raw_customers", "'ownr'", "unknown field")),
    Case("contract_wrong_type", "customers.raw_customers",
         lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: column(c, "signup_date").update(type="DAET")),
         ("raw_customers.yaml", "customers.raw_customers", "columns[signup_date].type", "DAET")),
    Case("contract_unknown_upstream", "marketing.customer_lifetime_value",
         lambda s, d: edit_contract(d, "marketing.customer_lifetime_value", lambda c: c["inputs"].append("customers.customer_profile")),
         ("customer_lifetime_value.yaml", "marketing.customer_lifetime_value", "'inputs'", "unknown product customers.customer_profile")),
    # pandas would keep a fraction in a BIGINT column, DuckDB's cast round it.
    Case("pandas_fraction_in_whole_number", "marketing.customer_lifetime_value", clv_returning("result.assign(orders=result['orders'] / 2)"),
         ("marketing.customer_lifetime_value", "does not fit the contract", "column orders", "not a whole number")),
    # DATE from pandas' timestamps: the cast would drop the time.
    Case("pandas_time_of_day_in_date", "marketing.customer_lifetime_value",
         clv_returning("result.assign(last_order_date=pd.to_datetime(result['last_order_date']) + pd.Timedelta(hours=13))"),
         ("marketing.customer_lifetime_value", "does not fit the contract", "column last_order_date", "a time of day")),
    Case("pandas_missing_column", "marketing.customer_lifetime_value", clv_returning("result.drop(columns=['segment'])"),
         ("marketing.customer_lifetime_value", "schema", "missing column segment")),
    Case("pandas_column_twice", "marketing.customer_lifetime_value", clv_returning("pd.concat([result, result[['revenue']] * 2], axis=1)"),
         ("marketing.customer_lifetime_value", "customer_lifetime_value.py", "more than one column named revenue")),
    Case("pandas_no_columns", "marketing.customer_lifetime_value", clv_returning("pd.DataFrame()"),
         ("marketing.customer_lifetime_value", "customer_lifetime_value.py", "the DataFrame has no columns")),
    Case("pandas_raises", "marketing.customer_lifetime_value", clv_returning("result['lifetime']"),
         ("marketing.customer_lifetime_value", "customer_lifetime_value.py", "transform raised KeyError('lifetime') at line 24",
          "; the inputs and their columns: orders.order_lines (order_id, line_no, customer_id,")),
    Case("pandas_syntax_error", "marketing.customer_lifetime_value",
         append_to("marketing/products/customer_lifetime_value.py", "\ndef transform(inputs:\n"),
         ("customer_lifetime_value.py", "marketing.customer_lifetime_value", "does not parse at line")),
    Case("sql_reads_a_product_not_in_inputs", "marketing.segment_revenue",
         append_to("marketing/products/segment_revenue.sql", "\nHAVING max(customer_id) IN (SELECT customer_id FROM orders.order_lines)"),
         ("segment_revenue.sql", "marketing.segment_revenue", "'inputs'", "reads orders.order_lines")),
    Case("contract_key_twice", "customers.raw_customers", append_to("customers/products/raw_customers.yaml", "access: public\n"),
         ("raw_customers.yaml", "customers.raw_customers", "the key 'access' appears twice")),
    Case("sql_syntax_error", "customers.customer_profiles",
         lambda s, d: (d / "customers/products/customer_profiles.sql").write_text("SELEC customer_id FROM customers.raw_customers"),
         ("customers.customer_profiles", "customer_profiles.sql", "syntax error", "SELEC")),
    # DuckDB quotes the value a cast failed on: here a customer's e-mail address.
    Case("sql_error_quoting_a_pii_value", "customers.customer_profiles",
         lambda s, d: (d / "customers/products/customer_profiles.sql").write_text(
             "SELECT customer_id, CAST(email AS DATE) AS email FROM customers.raw_customers"),
         ("customers.customer_profiles", "customer_profiles.sql", "Conversion Error (the rest of its text is withheld",
          "reads PII columns", "customers.raw_customers.email"),
         not_shown=("@example.",)),
    Case("cycle_across_domains", "customers.customer_profiles",
         lambda s, d: edit_contract(d, "customers.customer_profiles", lambda c: c["inputs"].append("orders.order_lines")),
         ("customer_profiles.yaml", "'inputs'", "cycle", "orders.order_lines -> customers.customer_profiles")),
    Case("source_glob_outside_data_dir", "customers.raw_customers",
         lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: c["source"].update(path="../../*.csv")),
         ("raw_customers.yaml", "customers.raw_customers", "source.path", "inside the source folder")),
    Case("source_symlink_outside_data_dir", "customers.raw_customers", symlink_outside,
         ("customers.raw_customers", "more.csv", "outside")),
]


def downstream(product_id: str, products: dict) -> set[str]:
    """The product and everything that reads it, directly or not."""
    found = {product_id}
    while grown := {p for p, c in products.items() if p not in found and found.intersection(c.inputs)}:
        found |= grown
    return found


def repair(data: Path, template: Path, domains: Path, sample_repo: Path) -> None:
    for copy, original in ((data / "sources", template / "sources"), (domains, sample_repo / "domains")):
        shutil.rmtree(copy)
        shutil.copytree(original, copy, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_keeps_last_good_version(case, published_mesh, published_template, domains_copy, sample_repo):
    everything = products_by_id(load_mesh())
    affected = downstream(case.product, everything)
    before = served()
    case.damage(published_mesh / "sources", domains_copy)

    mesh = load_mesh()
    broken = [d for d in mesh if d.error]
    runnable = [p for d in mesh for p in d.products]
    outcomes = {o.product: o for o in materialize_products(runnable)}
    if broken:  # the contract itself is bad: its domain is refused before anything runs
        assert case.product.split(".")[0] in {d.path.name for d in broken}
        message = " ".join(str(d.error) for d in broken)
    else:
        failed = outcomes[case.product]
        assert failed.status != "published"
        message = f"{failed.message} {failed.failed}"
    for expected in case.names:  # (a)
        assert expected in message, f"{expected!r} not in: {message}"
    for secret in case.not_shown:
        assert secret not in message and secret not in str(output_port.failed(case.product)), message

    after = served()
    assert after[case.product] == before[case.product]  # (b)
    for product_id, outcome in outcomes.items():  # (c)
        if product_id not in affected:
            assert outcome.ok, outcome
            assert after[product_id] != before[product_id]
    broken_folders = {d.path.name for d in broken}
    for folder in sorted(p for p in domains_copy.iterdir() if p.name not in broken_folders | {case.product.split(".")[0]}):
        assert domain_definitions(folder).resolve_asset_graph().get_all_asset_keys()

    repair(published_mesh, published_template, domains_copy, sample_repo)  # (d)
    fixed = products_by_id(load_mesh())
    outcomes = materialize_products([fixed[p] for p in sorted(affected)])
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    assert served()[case.product] != before[case.product]


def test_ten_megabyte_field_is_ingested_whole(published_mesh):
    """One 10 MB text field is data, not an error: it arrives intact and nothing else is lost."""
    path = published_mesh / "sources" / CUSTOMERS_CSV
    header, first, *rest = path.read_text(encoding="utf-8").splitlines()
    fields = first.split(",")
    fields[header.split(",").index("full_name")] = "x" * 10_000_000
    path.write_text("\n".join([header, ",".join(fields), *rest]) + "\n", encoding="utf-8")

    products = products_by_id(load_mesh())
    [outcome] = materialize_products([products["customers.raw_customers"]])
    assert outcome.ok, outcome
    snapshot = published_mesh / "published/customers/raw_customers" / served()["customers.raw_customers"] / "data.parquet"
    with duckdb.connect() as connection:
        rows, longest = connection.execute(
            f"SELECT count(*), max(length(full_name)) FROM read_parquet({literal(str(snapshot))})"
        ).fetchone()
    assert (rows, longest) == (1 + len(rest), 10_000_000)


def test_a_json_line_that_is_not_utf8_costs_that_line_only(published_mesh):
    """One byte that is not UTF-8 is a bad line: quarantined with its file, number and bytes, the rest published."""
    path = published_mesh / "sources" / ORDER_LINES_2
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"SKU-', b'"St\xfcck-')
    path.write_bytes(b"".join(lines))
    before = output_port.current("orders.raw_order_lines")

    [outcome] = materialize_products([products_by_id(load_mesh())["orders.raw_order_lines"]])
    assert outcome.ok, outcome
    assert outcome.rows == before.rows - 1
    with duckdb.connect(str(warehouse_path("orders")), read_only=True) as connection:
        quarantined = connection.execute("SELECT file, line, error, raw::BLOB FROM _quarantine.raw_order_lines").fetchall()
    assert quarantined == [(str(path), 3, "not UTF-8 text", lines[2].rstrip(b"\n"))]


def test_a_read_that_fails_leaves_the_last_quarantine_listed(published_mesh):
    """The bad rows the served version was read without stay listed when the next read fails whole."""
    path = published_mesh / "sources" / ORDER_LINES_2
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"SKU-', b'"St\xfcck-')
    path.write_bytes(b"".join(lines))
    product = products_by_id(load_mesh())["orders.raw_order_lines"]
    assert materialize_products([product])[0].ok

    def listed() -> tuple[int, list[tuple]] | None:
        with duckdb.connect(str(warehouse_path("orders")), read_only=True) as connection:
            return quarantine.quarantined(connection, product, 10)

    before = listed()
    assert before[0] == 1
    path.write_bytes(path.read_bytes().decode("utf-8", errors="replace").encode("utf-16"))  # unreadable whole
    [outcome] = materialize_products([product])
    assert outcome.status == "failed" and "UTF-16" in outcome.message
    assert listed() == before
