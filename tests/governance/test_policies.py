"""Each global policy, broken on purpose in a copy of the sample mesh, with the exact line `mesh validate` prints."""

from __future__ import annotations

import shutil

import pytest

from platform_lib.cli import main
from platform_lib.domain import domain_definitions
from platform_lib.governance import PolicyError, validate_mesh
from platform_lib.mesh import load_mesh
from tests.governance.policy_cases import CASES, SEGMENTS


def test_the_sample_mesh_follows_every_policy(capsys):
    assert validate_mesh(load_mesh()) == []
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_violation_is_one_line_naming_policy_product_file_and_fix(case, edit, domains_copy, capsys):
    edits, expected = CASES[case]
    for file, old, new in edits:
        edit(file, old, new)
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [expected]


def test_every_field_at_fault_in_a_contract_is_a_line(edit, domains_copy, capsys):
    edits, expected = CASES["valid-contract"]
    edit(*edits[0])
    edit(SEGMENTS, "access: internal", "access: everyone")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        expected,
        "valid-contract marketing.segment_revenue domains/marketing/products/segment_revenue.yaml: "
        "Input should be 'public' or 'internal'; fix field 'access'",
    ]


def test_a_code_location_that_breaks_a_policy_fails_to_load_and_the_others_load(edit, domains_copy):
    edits, expected = CASES["cross-domain-access"]
    for file, old, new in edits:
        edit(file, old, new)
    with pytest.raises(PolicyError) as raised:
        domain_definitions(domains_copy / "marketing")
    assert str(raised.value).splitlines()[1:] == [expected]
    for healthy in ("customers", "orders"):
        assert domain_definitions(domains_copy / healthy).resolve_asset_graph().get_all_asset_keys()


def _violations(capsys) -> list[str]:
    main(["validate"])
    return capsys.readouterr().out.splitlines()


def test_pii_is_followed_through_sql_and_a_written_no_is_a_teams_reviewed_word(edit, domains_copy, capsys):
    profiles, sql = "customers/products/customer_profiles.yaml", "customers/products/customer_profiles.sql"
    prefix = "pii-inherited customers.customer_profiles domains/customers/products/customer_profiles.yaml: "
    # An own input named without its domain, a column computed from PII that holds none.
    edit(sql, "FROM customers.raw_customers", "FROM raw_customers")
    edit(sql, "lower(trim(email)) AS email,", "lower(trim(email)) AS email, email IS NOT NULL AS has_email, length(full_name) AS name_length,")
    edit(profiles, "{name: country, type: VARCHAR, required: true,",
         "{name: has_email, type: BOOLEAN}\n  - {name: name_length, type: BIGINT}\n  - {name: country, type: VARCHAR, required: true,")
    assert _violations(capsys) == [
        f"{prefix}column has_email comes from PII column customers.raw_customers.email but is not marked PII; "
        "mark column has_email `pii: true` (with a `mask:`), or `pii: false` if it holds no personal data",
        f"{prefix}column name_length comes from PII column customers.raw_customers.full_name but is not marked PII; "
        "mark column name_length `pii: true` (with a `mask:`), or `pii: false` if it holds no personal data",
    ]
    edit(profiles, "{name: has_email, type: BOOLEAN}", "{name: has_email, type: BOOLEAN, pii: false}")
    edit(profiles, "{name: name_length, type: BIGINT}", "{name: name_length, type: BIGINT, pii: false}")
    assert _violations(capsys) == []

    # ... but not of a column that copies one, renamed, cast or case-folded.
    edit(sql, "length(full_name) AS name_length,", "length(full_name) AS name_length, upper(CAST(full_name AS VARCHAR)) AS contact,")
    edit(profiles, "{name: name_length, type: BIGINT, pii: false}", "{name: name_length, type: BIGINT, pii: false}\n  - {name: contact, type: VARCHAR, pii: false}")
    assert _violations(capsys) == [
        f"{prefix}column contact says `pii: false` but copies PII column customers.raw_customers.full_name; "
        "mark column contact `pii: true` (with a `mask:`), or compute from it what holds no personal data",
    ]
    edit(sql, "upper(CAST(full_name AS VARCHAR)) AS contact,", "")
    edit(profiles, "\n  - {name: contact, type: VARCHAR, pii: false}", "")

    # A query sqlglot cannot follow: a public product reading PII must then say it of every column.
    (domains_copy / sql).write_text(
        "SELECT customer_id, COLUMNS('^e.*'), email IS NOT NULL AS has_email, length(full_name) AS name_length, upper(country) AS country,\n"
        "  coalesce(segment, 'consumer') AS segment, signup_date, CAST(current_date - signup_date AS INTEGER) AS tenure_days\n"
        "FROM raw_customers"
    )
    edit(profiles, "{name: email, type: VARCHAR, pii: true, mask: hash,", "{name: email, type: VARCHAR,")
    assert _violations(capsys) == [
        f"{prefix}reads PII (customers.raw_customers.email, customers.raw_customers.full_name) in SQL whose columns cannot be "
        "followed to their inputs; say of each column whether it holds PII: `pii: true` (with a `mask:`) or `pii: false` "
        "(customer_id, email, country, segment, signup_date, tenure_days)"
    ]


def test_sql_with_a_typo_that_reads_pii_is_refused_naming_the_typo(edit, capsys):
    edit("customers/products/customer_profiles.sql", "upper(country)", "upper(countri)")
    assert _violations(capsys) == [
        "pii-inherited customers.customer_profiles domains/customers/products/customer_profiles.yaml: reads PII "
        "(customers.raw_customers.email, customers.raw_customers.full_name) in SQL whose columns cannot be followed to their inputs "
        "(sqlglot: Column 'countri' could not be resolved. Line: 4, Col: 17); if that is a mistake in the SQL, fix it; else "
        "say of each column whether it holds PII: `pii: true` (with a `mask:`) or `pii: false` (customer_id, country, segment, signup_date, tenure_days)"
    ]


@pytest.mark.parametrize(
    "email, source",
    [
        ("json_extract_string(to_json(r), '$.email')", "customers.raw_customers AS r"),
        ("CAST(r AS VARCHAR)", "customers.raw_customers AS r"),
        ("(SELECT to_json(s) FROM customers.raw_customers AS s LIMIT 1) ->> 'email'", "customers.raw_customers"),
        ("x", "customers.raw_customers AS r(customer_id, x)"),
        ("COLUMNS('^em.*')", "customers.raw_customers"),
        ("COLUMNS(c -> c = 'email')", "customers.raw_customers"),
    ],
)
def test_pii_read_by_a_whole_row_a_columns_expression_or_renamed_by_an_alias_cannot_be_followed(email, source, edit, domains_copy, capsys):
    """sqlglot follows none of these to an input column: the column would pass as holding no PII."""
    edit("customers/products/customer_profiles.sql", "FROM customers.raw_customers", f"FROM {source}")
    edit("customers/products/customer_profiles.sql", "lower(trim(email)) AS email", f"{email} AS email")
    edit("customers/products/customer_profiles.yaml", "{name: email, type: VARCHAR, pii: true, mask: hash,", "{name: email, type: VARCHAR,")
    assert _violations(capsys) == [
        "pii-inherited customers.customer_profiles domains/customers/products/customer_profiles.yaml: reads PII "
        "(customers.raw_customers.email, customers.raw_customers.full_name) in SQL whose columns cannot be followed to their inputs; "
        "say of each column whether it holds PII: `pii: true` (with a `mask:`) or `pii: false` "
        "(customer_id, email, country, segment, signup_date, tenure_days)"
    ]


def test_a_port_whose_product_is_gone_is_an_orphan(mesh_dir, domains_copy, capsys):
    """A domain removed (or a product renamed) leaves its ports, internal PII included."""
    assert main(["materialize", "--quiet", "customers"]) == 0
    shutil.rmtree(domains_copy / "customers")
    capsys.readouterr()
    main(["validate"])
    orphans = [line for line in capsys.readouterr().out.splitlines() if line.startswith("orphan-port")]
    assert orphans == [
        f"orphan-port customers.{name} {mesh_dir / 'published' / 'customers' / name}: is served from its output port (1 version) "
        "but no domain has its contract; delete the port's folder once no one reads it, or bring its contract back"
        for name in ("customer_profiles", "raw_customers")
    ]


def test_a_dbt_model_reading_an_internal_product_is_told_to_drop_its_source():
    from platform_lib.governance.policies import cross_domain_access
    from platform_lib.mesh import products_by_id

    products = products_by_id(load_mesh())
    internal = products["customers.customer_profiles"].model_copy(update={"access": "internal"})
    [violation] = cross_domain_access(products["orders.order_lines"], {internal.id: internal}.get)
    assert violation.fix == "remove its source() from the dbt model, or ask team-customers to make it `access: public`"
