"""`mesh materialize`'s selection: domains, products, and `+` for what is upstream or downstream, on the sample mesh."""

from __future__ import annotations

import pytest

from platform_lib.mesh import load_mesh
from platform_lib.selection import select, unknown

CUSTOMERS = {"customers.raw_customers", "customers.customer_profiles"}
ORDERS = {"orders.raw_orders", "orders.raw_order_lines", "orders.order_lines"}
MARKETING = {"marketing.customer_lifetime_value", "marketing.segment_revenue"}


@pytest.fixture(scope="module")
def mesh():
    return load_mesh()


@pytest.mark.parametrize(
    "names, products, domains",
    [
        ([], CUSTOMERS | ORDERS | MARKETING, {"customers", "orders", "marketing"}),
        (["orders"], ORDERS, {"orders"}),
        (["orders.order_lines", "customers"], {"orders.order_lines"} | CUSTOMERS, {"orders", "customers"}),
        (["+marketing.segment_revenue"], CUSTOMERS | ORDERS | MARKETING, {"marketing"}),
        (["+orders.order_lines"], CUSTOMERS | ORDERS, {"orders"}),
        (["orders.raw_orders+"], {"orders.raw_orders", "orders.order_lines"} | MARKETING, {"orders"}),
        (["customers+"], CUSTOMERS | {"orders.order_lines"} | MARKETING, {"customers"}),
        (["+customers.customer_profiles+"], CUSTOMERS | {"orders.order_lines"} | MARKETING, {"customers"}),
    ],
)
def test_names_select_products_and_plus_adds_upstream_or_downstream(mesh, names, products, domains):
    selection = select(mesh, names)
    assert selection.products == products and selection.domains == domains


def test_unknown_names_are_listed_with_their_plus(mesh):
    assert unknown(mesh, ["nope", "orders.nope+", "+customers", "orders.order_lines+", "orders"]) == ["nope", "orders.nope+"]
