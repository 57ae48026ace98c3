"""`mesh contract-diff` against a real git repository holding a copy of the sample domains."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from platform_lib.cli import main
from platform_lib.governance.types import INTEGER_RANGES, widens
from platform_lib.storage import WHOLE_NUMBER_TYPES

PROFILES = "customers/products/customer_profiles.yaml"
PROFILES_FILE = "domains/customers/products/customer_profiles.yaml"
SEGMENTS = "marketing/products/segment_revenue.yaml"
COUNTRY = "  - {name: country, type: VARCHAR, required: true, description: ISO 3166 alpha-2 country code.}\n"
SEGMENT = "  - {name: segment, type: VARCHAR, required: true, description: Commercial segment.}\n"
SIGNUP = "  - {name: signup_date, type: DATE, required: true}\n"
TENURE = "  - {name: tenure_days, type: INTEGER, required: true, description: \"Days since signup, as of the build.\"}\n"
REFERRER = "  - {name: referrer, type: VARCHAR}\n"
ORDER = "customer_id, email, country, segment, signup_date, tenure_days"
BY_POSITION = "readers by position read other columns (keep the order, add new columns at the end)"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commit(repo: Path, message: str) -> None:
    """Commit the domains folder as it is to `main`, the base of the diff."""
    git(repo, "add", "domains")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", message)


@pytest.fixture
def repo(domains_copy: Path) -> Path:
    """A git repository whose `main` holds the sample domains, with the working tree checked out."""
    root = domains_copy.parent
    git(root, "init", "--quiet", "--initial-branch=main")
    commit(root, "base")
    return root


def diff(capsys) -> tuple[int, list[str]]:
    code = main(["contract-diff", "--base", "main"])
    return code, capsys.readouterr().out.splitlines()


def test_compatible_changes_pass(repo, edit, capsys):
    edit(PROFILES, TENURE, TENURE + REFERRER)  # at the end: the column order is kept
    edit(PROFILES, "description: One row per customer with", "description: Exactly one row per customer with")
    edit("orders/products/raw_orders.yaml", "tier: bronze", "tier: bronze\naccess: public")
    edit("orders/products/raw_order_lines.yaml", "max_bad_fraction: 0.001}", "max_bad_fraction: 0.001, append_only: true}")
    assert diff(capsys) == (0, [
        "compatible customers.customer_profiles: column referrer added as nullable",
        "compatible customers.customer_profiles: description changed",
        "compatible orders.raw_order_lines: source changed",
        "compatible orders.raw_orders: access widened from internal to public",
    ])


def test_a_breaking_change_to_a_public_product_needs_a_major_bump(repo, edit, capsys):
    edit(PROFILES, TENURE, "")
    edit(PROFILES, "{name: signup_date, type: DATE, required: true}", "{name: signup_date, type: VARCHAR, required: true}")
    edit(PROFILES, "{name: segment, type: VARCHAR, required: true,", "{name: segment, type: VARCHAR,")
    edit(PROFILES, "{name: email, type: VARCHAR, pii: true, mask: hash,", "{name: email, type: VARCHAR, required: true, pii: true, mask: redact,")
    edit(PROFILES, "primary_key: [customer_id]", "primary_key: [customer_id, country]")
    edit(PROFILES, "{name: customer_id, type: BIGINT,", "{name: customer_id, type: HUGEINT,")
    edit(PROFILES, "version: 1.0.0", "version: 1.1.0")
    expected = [
        "BREAKING customers.customer_profiles: column customer_id type widened from BIGINT to HUGEINT; "
        "consumers that pass it through fail their schema check until their contracts follow",
        "BREAKING customers.customer_profiles: column email made required; producers that send nulls now fail",
        "BREAKING customers.customer_profiles: column email published values change (hash -> redact)",
        "BREAKING customers.customer_profiles: column segment made nullable; consumers that rely on a value now get nulls",
        "BREAKING customers.customer_profiles: column signup_date type changed from DATE to VARCHAR, which does not widen",
        "BREAKING customers.customer_profiles: column tenure_days removed or renamed",
        "BREAKING customers.customer_profiles: primary key changed from (customer_id) to (customer_id, country)",
    ]
    assert diff(capsys) == (1, expected + [
        f"major-version customers.customer_profiles {PROFILES_FILE}: breaking change to public product without a "
        "major version bump (1.0.0 -> 1.1.0); set `version: 2.0.0` and tell its consumers "
        "(marketing.customer_lifetime_value, orders.order_lines), or make the change compatible"
    ])
    edit(PROFILES, "version: 1.1.0", "version: 2.0.0")
    assert diff(capsys) == (0, expected)


@pytest.mark.parametrize("old, new, changes", [
    # Both VARCHAR: a reader by position gets segments for countries, and no type tells it.
    (COUNTRY + SEGMENT, SEGMENT + COUNTRY, [
        f"BREAKING customers.customer_profiles: column order changed from ({ORDER}) to "
        f"(customer_id, email, segment, country, signup_date, tenure_days); {BY_POSITION}",
    ]),
    (SIGNUP, REFERRER + SIGNUP, [
        f"BREAKING customers.customer_profiles: column order changed from ({ORDER}) to "
        f"(customer_id, email, country, segment, referrer, signup_date, tenure_days); {BY_POSITION}",
        "compatible customers.customer_profiles: column referrer added as nullable",
    ]),
    # The columns after it move up, but the removal is what breaks: no reorder to report.
    (SIGNUP, "", ["BREAKING customers.customer_profiles: column signup_date removed or renamed"]),
], ids=["moved", "inserted", "removed"])
def test_the_column_order_is_part_of_the_contract(repo, edit, capsys, old, new, changes):
    edit(PROFILES, old, new)
    assert diff(capsys) == (1, changes + [
        f"major-version customers.customer_profiles {PROFILES_FILE}: breaking change to public product without a "
        "major version bump (1.0.0 -> 1.0.0); set `version: 2.0.0` and tell its consumers "
        "(marketing.customer_lifetime_value, orders.order_lines), or make the change compatible"
    ])


def test_narrowing_access_and_removing_products(repo, domains_copy, edit, capsys):
    edit("orders/products/order_lines.yaml", "access: public", "access: internal")
    (domains_copy / "customers/products/raw_customers.yaml").unlink()
    (domains_copy / PROFILES).unlink()
    (domains_copy / "customers/products/customer_profiles.sql").unlink()
    # marketing reads the removed product: it no longer loads, so its own changes are unknown (exit 2).
    assert diff(capsys) == (2, [
        "BREAKING customers.customer_profiles: product removed (was public)",
        "BREAKING customers.raw_customers: product removed (was internal)",
        "BREAKING orders.order_lines: access narrowed from public to internal",
        f"major-version customers.customer_profiles {PROFILES_FILE}: public product customers.customer_profiles 1.0.0 "
        "is removed; keep it, and first publish a major version (2.0.0) that makes it `access: internal`",
        "major-version orders.order_lines domains/orders/products/order_lines.yaml: breaking change to public product "
        "without a major version bump (1.0.0 -> 1.0.0); set `version: 2.0.0` and tell its consumers, or make the change compatible",
    ])


def test_breaking_an_internal_product_needs_no_bump(repo, edit, capsys):
    edit("marketing/products/segment_revenue.yaml", "{name: customers, type: BIGINT,", "{name: customers, type: INTEGER,")
    # Made public, its PII is masked in the output port: the domain's own readers see new values.
    edit("customers/products/raw_customers.yaml", "access: internal", "access: public")
    assert diff(capsys) == (0, [
        "BREAKING customers.raw_customers: column email published values change (clear -> redact)",
        "BREAKING customers.raw_customers: column full_name published values change (clear -> redact)",
        "compatible customers.raw_customers: access widened from internal to public",
        "BREAKING marketing.segment_revenue: column customers type changed from BIGINT to INTEGER, which does not widen",
    ])


@pytest.mark.parametrize("contract, product, stated", [
    (PROFILES, "customers.customer_profiles", "version: 1.0.0\n"),
    (SEGMENTS, "marketing.segment_revenue", ""),  # internal, its version the default
], ids=["public", "internal"])
@pytest.mark.parametrize("old, new, refused", [
    ("2.1.0", "1.4.0", True), ("1.2.0", "1.1.9", True), ("1.10.0", "1.9.0", True), ("1.9.0", "1.10.0", False),
])
def test_a_version_never_goes_down(repo, edit, capsys, contract, product, stated, old, new, refused):
    """Compared as numbers: as text, 1.10.0 would come before 1.9.0."""
    edit(contract, f"{stated}access:", f"version: {old}\naccess:")
    commit(repo, f"version {old}")
    edit(contract, f"version: {old}", f"version: {new}")
    expected = [
        f"version-order {product} domains/{contract}: field `version` goes down from {old} to {new}; "
        f"versions only grow: set `version` to {old} or higher"
    ]
    assert diff(capsys) == ((1, expected) if refused else (0, []))


def test_a_base_written_under_older_rules_is_still_compared(repo, edit, capsys):
    """A base whose key column was not `required`, which today's loader refuses: fixing it in the
    same change as a breaking one must not hide the breaking one."""
    edit(PROFILES, "{name: customer_id, type: BIGINT, required: true,", "{name: customer_id, type: BIGINT,")
    commit(repo, "older rules")
    edit(PROFILES, "{name: customer_id, type: BIGINT,", "{name: customer_id, type: BIGINT, required: true,")
    edit(PROFILES, TENURE, "")
    code, out = diff(capsys)
    assert code == 1
    assert "BREAKING customers.customer_profiles: column tenure_days removed or renamed" in out
    assert "BREAKING customers.customer_profiles: column customer_id made required; producers that send nulls now fail" in out


def test_a_domain_that_does_not_load_fails_the_diff(repo, edit, capsys):
    edit(PROFILES, "{name: tenure_days, type: INTEGER, required: true,", "{name: tenure_days, type: INTEGER, required: true, required: false,")
    assert main(["contract-diff", "--base", "main"]) == 2
    err = capsys.readouterr().err
    assert "not compared, the domain does not load: " in err and "the key 'required' appears twice" in err


def test_an_unknown_base_is_an_error(repo, capsys):
    assert main(["contract-diff", "--base", "no-such-branch"]) == 2
    assert f"no-such-branch is not a commit, branch or tag of {repo}" in capsys.readouterr().err


@pytest.mark.parametrize("old, new, widened", [
    ("INTEGER", "BIGINT", True), ("BIGINT", "INTEGER", False), ("UINTEGER", "BIGINT", True), ("UBIGINT", "BIGINT", False),
    ("INTEGER", "DOUBLE", True), ("BIGINT", "DOUBLE", False), ("FLOAT", "DOUBLE", True), ("DOUBLE", "FLOAT", False),
    ("INTEGER", "DECIMAL(12,2)", True), ("INTEGER", "DECIMAL(10,2)", False), ("DECIMAL(12,2)", "DECIMAL(14,3)", True),
    ("DECIMAL(12,2)", "DECIMAL(12,3)", False), ("DATE", "TIMESTAMP", False), ("INTEGER", "VARCHAR", False),
])
def test_widening(old, new, widened):
    assert widens(old, new) is widened


def test_every_whole_number_type_has_its_range():
    """A whole-number type the mesh knows and the diff does not would make every change to it breaking."""
    assert set(INTEGER_RANGES) == WHOLE_NUMBER_TYPES
