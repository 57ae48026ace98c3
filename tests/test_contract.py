"""Contract loading: the sample loads, and every kind of mistake names file, product and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_lib.contract import ContractError, load_domain, load_products, parse_duration
from platform_lib.mesh import domains_dir, load_mesh
from platform_lib.sample_data import DOMAINS

VALID = """\
description: A product for tests.
access: public
transform: sql
inputs: [customers.customer_profiles]
retention: {snapshots: 3}
primary_key: [id]
columns:
  - {name: id, type: BIGINT, required: true}
  - {name: label, type: VARCHAR}
quality:
  - {expect: expect_column_values_to_be_between, column: id, min_value: 0}
"""


@pytest.fixture
def domain_dir(tmp_path) -> Path:
    folder = tmp_path / "shop"
    (folder / "products").mkdir(parents=True)
    (folder / "domain.yaml").write_text("name: shop\nowner: team-shop\n")
    (folder / "products" / "items.sql").write_text("SELECT 1 AS id, 'a' AS label")
    return folder


def load(domain_dir: Path, text: str):
    (domain_dir / "products" / "items.yaml").write_text(text)
    return load_products(load_domain(domain_dir))


def test_the_sample_domains_load():
    for name in DOMAINS:
        domain = load_domain(domains_dir() / name)
        products = load_products(domain)
        assert products and all(p.domain == name and p.owner == domain.owner for p in products)


def test_a_valid_product(domain_dir):
    (product,) = load(domain_dir, VALID)
    assert product.id == "shop.items" and product.owner == "team-shop"
    assert product.column_types == {"id": "BIGINT", "label": "VARCHAR"}
    assert product.quality[0].kwargs == {"column": "id", "min_value": 0}
    assert product.quality[0].check_name == "column_values_to_be_between__id"


@pytest.mark.parametrize(
    "change, field, problem",
    [
        (("access: public", "acess: public"), "acess", "unknown field"),
        (("access: public", "access: everyone"), "access", "'public' or 'internal'"),
        (("type: BIGINT", "type: STRNG"), "columns[id].type", "is not a DuckDB type"),
        (("type: BIGINT", "type: DECIMAL(10,0)"), "columns[id].type", "a type with a comma is quoted inside `{...}`"),
        (("columns:", "cols:"), "cols", "field 'cols': unknown field (a typo?); and field 'columns': required field is missing"),
        (("access: public", "access: public\nversion: 1.0"), "version", "YAML read 1.0 as a float: put the value in quotes"),
        (("access: public", "access: public\nowner:"), "owner", "is empty: give it a value"),
        (("columns:\n  - {name: id, type: BIGINT, required: true}\n  - {name: label, type: VARCHAR}", "columns: []"), "columns",
         "is an empty list: give it at least one entry"),
        (("{name: label, type: VARCHAR}", "{name: label}"), "columns[label].type", "required field is missing"),
        (("primary_key: [id]", "primary_key: [code]"), "primary_key", "primary_key names columns not in `columns`: code"),
        (("primary_key: [id]", "primary_key: [label]"), "primary_key", "primary_key column label is not `required: true`: a key is never null"),
        (("retention: {snapshots: 3}", "retention: {snapshots: 3}\nfreshness: {fail_after: 0h}"), "freshness.fail_after", "'0h' is less than a minute"),
        (("retention: {snapshots: 3}", "retention: {snapshots: 3}\nfreshness: {fail_after: 30s}"), "freshness.fail_after", "'30s' is less than a minute"),
        (("retention: {snapshots: 3}", "retention: {snapshots: 3}\nfreshness: {fail_after: 2h, warn_after: 2h}"), "freshness",
         "warn_after (2h) must be shorter than fail_after (2h)"),
        (("inputs: [customers.customer_profiles]", "inputs: [customer_profiles]"), "inputs", "is not a product id"),
        (("retention: {snapshots: 3}", "retention: {snapshots: 0}"), "retention.snapshots", "greater than or equal to 1"),
        (("retention: {snapshots: 3}", "retention: {snapshots: '3'}"), "retention.snapshots", "Input should be a valid integer"),
        (("retention: {snapshots: 3}", "retention: {snapshots: true}"), "retention.snapshots", "Input should be a valid integer"),
        (("retention: {snapshots: 3}", "retention: {snapshots: 3, grace: soon}"), "retention.grace", "'soon' is not a duration like 30m, 2h or 1d"),
        (("primary_key: [id]", "primary_key: [id, id]"), "primary_key", "primary_key names id more than once"),
        (("primary_key: [id]", "primary_key: id"), "primary_key", "a list, even of one: `primary_key: [id]`"),
        (("{name: label, type: VARCHAR}", "{name: id, type: VARCHAR}"), "columns", "columns listed twice: id"),
        (("transform: sql", "source: {format: csv, path: shop/*.csv}"), "inputs", "an ingest product (with `source`) takes no `inputs`"),
        (("inputs: [customers.customer_profiles]", "inputs: [shop.items]"), "inputs", "shop.items lists itself in `inputs`"),
        (("inputs: [customers.customer_profiles]", "inputs: customers.customer_profiles"), "inputs",
         "a list, even of one: `inputs: [customers.customer_profiles]`"),
        (("{name: label, type: VARCHAR}", "{name: label, type: VARCHAR, pii: 'no'}"), "columns[label].pii", "Input should be a valid boolean"),
        (("column: id, min_value: 0", "column: id, min_value: 0, mostly: '0.5'"), "quality[0].mostly", "Input should be a valid number"),
        (("column: id, min_value: 0", "column: id, min_value: 10, max_value: 1"), "quality[0].expect_column_values_to_be_between",
         "min_value 10 is above max_value 1: the rule could never pass"),
        (("column: id, min_value: 0", "column: id, min_value: 10, max_value: 1, row_condition: 'id > 0'"),  # run by GE, which accepts it
         "quality[0].expect_column_values_to_be_between", "min_value 10 is above max_value 1: the rule could never pass"),
        (("transform: sql", "transform: spark"), "transform", "'sql', 'pandas' or 'dbt'"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, encoding: ansi}"),
         "source.encoding", "'ansi' is not an encoding Python knows"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: parquet, path: shop/*.parquet, encoding: latin-1}"),
         "source.encoding", "Parquet files are binary, with no text encoding"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, date_format: '%d.%Q.%Y'}"),
         "source.date_format", "'%d.%Q.%Y' is not a strptime format"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: json, path: shop/*.jsonl, decimal_separator: ','}"),
         "source.decimal_separator", "only a CSV source has a decimal_separator"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, thousands_separator: '.'}"),
         "source.thousands_separator", "'.' is the decimal separator too"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, thousands_separator: '_'}"),
         "source.thousands_separator", "Input should be '.', ',', ' ' or \"'\""),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: parquet, path: shop/*.parquet, delimiter: ';'}"),
         "source.delimiter", "only a CSV source has a delimiter"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, decimal_separator: ',', delimiter: ','}"),
         "source.delimiter", "',' is the decimal_separator too: a number not quoted would be split in two fields"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, thousands_separator: ',', delimiter: ','}"),
         "source.delimiter", "',' is the thousands_separator too"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, delimiter: '||'}"),
         "source.delimiter", "'||' is not one character that can separate fields"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, delimiter: ';', quote: ';'}"),
         "source.quote", "Input should be '\"', \"'\" or ''"),
        (("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: shop/*.csv, delimiter: \"'\", quote: \"'\"}"),
         "source.quote", "\"'\" is the delimiter too"),
        (("expect_column_values_to_be_between", "expect_column_values_to_be_fabulous"), "quality[0].expect_column_values_to_be_fabulous", "not a Great Expectations expectation"),
        (("column: id, min_value: 0", "column: nope, min_value: 0"), "quality[0].expect_column_values_to_be_between", "column 'nope' is not a column"),
        (("column: id, min_value: 0", "column: id, min_value: 0, name: id_present, severity: fatal"), "quality[0].severity", "'error' or 'warn'"),
        (("column: id, min_value: 0", "column: id, min_value: 0, name: schema"), "quality[0]",
         "'schema' is the name of the platform's own check; give the rule another `name`"),
    ],
)
def test_mistakes_name_file_product_and_field(domain_dir, change, field, problem):
    with pytest.raises(ContractError) as raised:
        load(domain_dir, VALID.replace(*change))
    error = raised.value
    assert error.file.endswith("shop/products/items.yaml") and error.product == "shop.items"
    assert error.field == field
    assert problem in str(error) and "items.yaml" in str(error) and "shop.items" in str(error)


@pytest.mark.parametrize("name", ["main", "temp"])
def test_a_domain_may_not_take_a_name_duckdb_uses(domain_dir, name):
    (domain_dir / "domain.yaml").write_text(f"name: {name}\nowner: team-shop\n")
    with pytest.raises(ContractError) as raised:
        load_domain(domain_dir)
    assert raised.value.field == "name" and "reserved" in str(raised.value) and "domain.yaml" in str(raised.value)


def test_every_field_at_fault_is_named_at_once(domain_dir):
    """Three mistakes, one message: a team mends them in one edit, not three runs."""
    wrong = VALID.replace("access: public", "acess: public\nversion: 1.0").replace("retention: {snapshots: 3}", "retention: {snapshots: 0}")
    with pytest.raises(ContractError) as raised:
        load(domain_dir, wrong)
    assert raised.value.field == "version" and str(raised.value).count("; and field ") == 2
    for field, problem in (("acess", "unknown field"), ("version", "expected text"), ("retention.snapshots", "Input should be greater than or equal to 1")):
        assert f"field '{field}': {problem}" in str(raised.value)


def test_an_empty_file_says_so(domain_dir):
    (domain_dir / "domain.yaml").write_text("# the team will fill this in\n")
    with pytest.raises(ContractError, match=r"domain.yaml: the file is empty: it needs its fields"):
        load_domain(domain_dir)


def test_broken_yaml_syntax_names_the_line(domain_dir):
    with pytest.raises(ContractError, match=r"items.yaml: product shop.items: not valid YAML at line 4, column 1: .*flow mapping at line 3"):
        load(domain_dir, "description: x\ncolumns:\n  - {name: id, type: BIGINT\n")


def test_a_key_given_twice_is_refused_not_overwritten(domain_dir):
    """PyYAML keeps the last of two equal keys: a second `columns:` block would replace the first."""
    with pytest.raises(ContractError, match=r"items.yaml: product shop.items: not valid YAML at line 12, column 1: the key 'columns' appears twice"):
        load(domain_dir, VALID + "columns:\n  - {name: id, type: BIGINT}\n")
    with pytest.raises(ContractError, match=r"line 8, column 30: the key 'type' appears twice"):
        load(domain_dir, VALID.replace("type: BIGINT,", "type: BIGINT, type: VARCHAR,"))


def test_a_contract_named_yml_is_refused_not_ignored(domain_dir):
    (domain_dir / "products" / "items.yml").write_text(VALID)
    with pytest.raises(ContractError, match=r"items.yml: product shop.items: a contract's file ends in .yaml: rename it items.yaml"):
        load_products(load_domain(domain_dir))


def test_a_domain_file_named_yml_is_refused_not_ignored(domain_dir):
    (domain_dir / "domain.yaml").rename(domain_dir / "domain.yml")
    [loaded] = load_mesh(domain_dir.parent)
    assert str(loaded.error).endswith("shop/domain.yml: a domain's file is domain.yaml: rename it")


def test_a_domain_is_named_after_its_folder(domain_dir):
    """Two folders naming one domain would publish to the same output ports."""
    (domain_dir / "domain.yaml").write_text("name: customers\nowner: team-shop\n")
    with pytest.raises(ContractError, match=r"domain.yaml: field 'name': 'customers' is not the name of its folder shop"):
        load_domain(domain_dir)


@pytest.mark.parametrize(
    "sql, read",
    [
        ("SELECT * FROM orders.order_lines", "orders.order_lines"),
        ("SELECT * FROM customers.customer_profiles WHERE customer_id IN (SELECT customer_id FROM orders.order_lines)", "orders.order_lines"),
        ("SELECT * FROM customers.customer_profiles, others", "others"),
        ("SELECT * FROM customers.customer_profiles, main.others", "main.others"),
        ("SELECT * FROM customers.customer_profiles, shop.others", "shop.others"),
        ("SELECT * FROM customers.customer_profiles, lake.orders.order_lines", "lake.orders.order_lines"),
        ("WITH x AS (SELECT 1) SELECT * FROM customers.customer_profiles, 'ports/orders/order_lines/v1/data.parquet'",
         "ports/orders/order_lines/v1/data.parquet"),
    ],
)
def test_sql_reads_only_the_contracts_inputs(domain_dir, sql, read):
    (domain_dir / "products" / "items.sql").write_text(sql)
    with pytest.raises(ContractError) as raised:
        load(domain_dir, VALID)
    assert (Path(raised.value.file).name, raised.value.product, raised.value.field) == ("items.sql", "shop.items", "inputs")
    assert f"the SQL reads {read}, which is not one of the contract's inputs (customers.customer_profiles)" in str(raised.value)


@pytest.mark.parametrize("call", ["read_parquet('ports/orders/order_lines/*/data.parquet')", "query_table('orders.order_lines')"])
def test_sql_reads_no_file_and_no_table_by_a_function(domain_dir, call):
    (domain_dir / "products" / "items.sql").write_text(f"SELECT * FROM customers.customer_profiles, {call}")
    with pytest.raises(ContractError) as raised:
        load(domain_dir, VALID)
    function = call.split("(")[0]
    assert f"items.sql: product shop.items: field 'inputs': the SQL calls the table function {function}" in str(raised.value)


def test_sql_the_inputs_check_cannot_read_is_refused(domain_dir):
    """DuckDB cannot serialize a PIVOT without its values (nor two statements): what such SQL
    reads would go unchecked, a `read_parquet` of another domain's internal port included."""
    (domain_dir / "products" / "items.sql").write_text(
        "PIVOT (SELECT id, 'x' AS k, email FROM read_parquet('published/src/base/*/*.parquet')) ON k USING first(email) GROUP BY id"
    )
    with pytest.raises(ContractError) as raised:
        load(domain_dir, VALID)
    assert (Path(raised.value.file).name, raised.value.product, raised.value.field) == ("items.sql", "shop.items", "transform")
    assert "the SQL is not a SELECT the platform can read, so what it reads cannot be checked (a PIVOT needs `ON col IN (...)`)" in str(raised.value)


def test_sql_that_does_not_parse_is_refused_with_duckdbs_message(domain_dir):
    (domain_dir / "products" / "items.sql").write_text("SELEC id FROM customers.customer_profiles")
    with pytest.raises(ContractError, match=r'items.sql: product shop.items: field \'transform\': the SQL does not parse: syntax error at or near "SELEC"'):
        load(domain_dir, VALID)


def test_sql_that_is_not_utf8_names_its_file(domain_dir):
    (domain_dir / "products" / "items.sql").write_bytes("-- café\nSELECT 1 AS id".encode("cp1252"))
    with pytest.raises(ContractError, match=r"items.sql: product shop.items: field 'transform': not UTF-8 text"):
        load(domain_dir, VALID)


def test_sql_may_read_its_inputs_and_its_own_common_table_expressions(domain_dir):
    (domain_dir / "products" / "items.sql").write_text(
        "WITH Others AS (SELECT * FROM Customers.\"Customer_Profiles\") "
        "SELECT * FROM others, shop.stock, stock, MAIN.Stock, range(3), generate_series(1, 2), unnest([1])"
    )
    (product,) = load(domain_dir, VALID.replace("inputs: [customers.customer_profiles]", "inputs: [customers.customer_profiles, shop.stock]"))
    assert product.inputs == ("customers.customer_profiles", "shop.stock")


@pytest.mark.parametrize(
    "module, problem",
    [
        ("def transform(inputs:\n    return inputs\n", "the module does not parse at line 1: '(' was never closed"),
        ("def transfrom(inputs):\n    return inputs\n", "the module defines no `transform(inputs)` at its top level"),
    ],
)
def test_a_pandas_module_is_read_at_load(domain_dir, module, problem):
    (domain_dir / "products" / "items.py").write_text(module)
    with pytest.raises(ContractError) as raised:
        load(domain_dir, VALID.replace("transform: sql", "transform: pandas"))
    assert (Path(raised.value.file).name, raised.value.field, raised.value.problem) == ("items.py", "transform", problem)
    for fine in ("from elsewhere import transform\n", "transform = len\n", "def transform(inputs):\n    return inputs\n"):
        (domain_dir / "products" / "items.py").write_text(fine)
        assert load(domain_dir, VALID.replace("transform: sql", "transform: pandas"))


def test_a_sql_transform_needs_its_sql_file(domain_dir):
    (domain_dir / "products" / "items.sql").unlink()
    with pytest.raises(ContractError, match=r"field 'transform': transform: sql needs items.sql beside the contract"):
        load(domain_dir, VALID)


def test_a_source_may_not_leave_the_source_folder(domain_dir):
    text = VALID.replace("transform: sql\ninputs: [customers.customer_profiles]", "source: {format: csv, path: ../../etc/*.csv}")
    with pytest.raises(ContractError, match=r"field 'source.path'.*must be a path inside the source folder"):
        load(domain_dir, text)


def test_durations():
    assert parse_duration("90m").total_seconds() == 5400
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
