"""`mesh materialize` refuses a domain its code location would refuse, and builds the rest of the mesh."""

from __future__ import annotations

from platform_lib import output_port
from platform_lib.cli import main
from tests.helpers import run

CUSTOMERS_RAW = "customers/products/raw_customers.yaml"
SEGMENTS = "marketing/products/segment_revenue.yaml"
CUSTOMERS = ["customers.customer_profiles", "customers.raw_customers"]
ORDERS = ["orders.order_lines", "orders.raw_order_lines", "orders.raw_orders"]
MARKETING = ["marketing.customer_lifetime_value", "marketing.segment_revenue"]


def published(product_ids: list[str]) -> dict[str, output_port.Snapshot | None]:
    return {product_id: output_port.current(product_id) for product_id in product_ids}


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
