"""The README's example product, copied from the README as a reader would, loads and publishes."""

from __future__ import annotations

import re

from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh, products_by_id
from platform_lib.storage import REPO_ROOT


def test_the_readme_example_product_publishes(mesh_dir, domains_copy):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for language, path in (("yaml", "#"), ("sql", "--")):
        block = re.search(rf"```{language}\n{path} domains/(orders/products/big_orders\.{language})\n(.*?)```", readme, re.S)
        assert block, f"README.md has no {language} block for big_orders"
        (domains_copy / block[1]).write_text(block[2], encoding="utf-8")
    products = products_by_id(load_mesh())
    needed = ["customers.raw_customers", "customers.customer_profiles", "orders.raw_orders", "orders.raw_order_lines",
              "orders.order_lines", "orders.big_orders"]
    outcomes = materialize_products([products[p] for p in needed])
    assert [(o.product, o.status) for o in outcomes if o.product == "orders.big_orders"] == [("orders.big_orders", "published")]
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
