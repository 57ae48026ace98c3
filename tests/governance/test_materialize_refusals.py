"""`mesh materialize` refuses a domain its code location would refuse, and builds the rest of the mesh."""

from __future__ import annotations

import duckdb
import pytest

from platform_lib import output_port, storage
from platform_lib.cli import main
from platform_lib.domain import domain_definitions
from platform_lib.governance import PolicyError
from tests.governance.policy_cases import CASES, CUSTOMERS_RAW, SEGMENTS
from tests.helpers import products, run

CONTRACT_POLICY_CASES = sorted(case for case in CASES if not case.startswith("valid-contract"))
CUSTOMERS = ["customers.customer_profiles", "customers.raw_customers"]
ORDERS = ["orders.order_lines", "orders.raw_order_lines", "orders.raw_orders"]
MARKETING = ["marketing.customer_lifetime_value", "marketing.segment_revenue"]


def published(product_ids: list[str]) -> dict[str, output_port.Snapshot | None]:
    return {product_id: output_port.current(product_id) for product_id in product_ids}


def views_of_other_domains(domain: str) -> set[str]:
    """The views a domain's DuckDB file holds over other domains' ports."""
    with duckdb.connect(str(storage.warehouse_path(domain)), read_only=True) as connection:
        views = "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal AND schema_name <> 'main'"
        return {row[0] for row in connection.execute(views).fetchall()}


@pytest.mark.parametrize("case", CONTRACT_POLICY_CASES)
def test_a_domain_that_breaks_a_policy_is_refused_with_its_code_locations_message(case, mesh_dir, edit, domains_copy, capsys):
    edits, violation = CASES[case]
    for file, old, new in edits:
        edit(file, old, new)
    domain = violation.split()[1].split(".")[0]
    with pytest.raises(PolicyError) as location:
        domain_definitions(domains_copy / domain)

    assert main(["materialize", domain]) == 2

    err = capsys.readouterr().err
    assert f"cannot load domain {domain}: {location.value}" in err
    assert violation in err.splitlines()
    assert not any(published([p.id for p in products(domain)]).values())


def test_a_product_that_reads_an_internal_product_with_pii_is_not_published(mesh_dir, edit, capsys):
    run()
    before = published(CUSTOMERS + ORDERS + MARKETING)
    edit(SEGMENTS, "inputs: [marketing.customer_lifetime_value]", "inputs: [marketing.customer_lifetime_value, customers.raw_customers]")

    assert main(["materialize"]) == 2

    assert (
        "cross-domain-access marketing.segment_revenue domains/marketing/products/segment_revenue.yaml: "
        "reads customers.raw_customers, an internal product of domain customers; "
        "remove it from `inputs`, or ask team-customers to make it `access: public`"
    ) in capsys.readouterr().err.splitlines()
    after = published(CUSTOMERS + ORDERS + MARKETING)
    assert [p for p in before if after[p] != before[p]] == CUSTOMERS + ORDERS, "marketing keeps its versions, the others publish"
    assert views_of_other_domains("marketing") == {"customers.customer_profiles", "orders.order_lines"}


def test_a_domain_that_does_not_load_fails_alone(mesh_dir, edit, domains_copy, capsys):
    edit(SEGMENTS, "access: internal", "acess: internal")

    assert main(["materialize"]) == 2

    out, err = capsys.readouterr()
    assert (
        f"cannot load domain marketing: {domains_copy}/{SEGMENTS}: product marketing.segment_revenue: "
        "field 'acess': unknown field (a typo?)"
    ) in err.splitlines()
    assert all(published(CUSTOMERS + ORDERS).values()), out
    assert not any(published(MARKETING).values())


def test_a_product_that_reads_a_domain_that_does_not_load_is_not_built_on_its_old_port(mesh_dir, edit, capsys):
    run("customers")
    edit(CUSTOMERS_RAW, "access: internal", "acess: internal")

    assert main(["materialize", "orders", "marketing"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert "orders.order_lines: not built: it reads customers.customer_profiles of domain customers, which does not load" in lines
    assert (
        "marketing.segment_revenue: not built: it reads marketing.customer_lifetime_value, not built either: "
        "domain customers does not load"
    ) in lines
    assert all(published(["orders.raw_order_lines", "orders.raw_orders"]).values())
    assert not any(published(["orders.order_lines", *MARKETING]).values())
