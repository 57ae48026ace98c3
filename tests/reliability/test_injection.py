"""Names that try SQL injection, at every place a name enters SQL: quoted or refused, never executed.

Each case plants a payload that would drop a canary table if it reached SQL unquoted,
then loads and materializes the domain; the canary must survive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import duckdb
import pytest

from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh
from platform_lib.storage import warehouse_path

from tests.reliability.damage import CUSTOMERS_CSV, column, edit_contract, rewrite_csv

PAYLOAD = """x"'); DROP TABLE main.canary; --"""
PRODUCTS = "customers/products"


def rename_product(sources: Path, domains: Path) -> None:
    for suffix in (".yaml", ".sql"):
        (domains / PRODUCTS / f"customer_profiles{suffix}").rename(domains / PRODUCTS / f"p{PAYLOAD}{suffix}")


def extra_source_file(sources: Path, domains: Path) -> None:
    header = (sources / CUSTOMERS_CSV).read_text().splitlines()[0]
    (sources / "customers" / f"{PAYLOAD}.csv").write_text(f"{header}\n99999,new@example.com,New,NL,2021-01-01,consumer\n")


INJECTIONS: dict[str, tuple[Callable[[Path, Path], None], bool]] = {
    # name: (plant the payload, whether the contract must refuse it)
    "column_name": (lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: column(c, "segment").update(name=PAYLOAD)), True),
    "product_name": (rename_product, True),
    "domain_name": (lambda s, d: (d / "customers/domain.yaml").write_text(f"name: '{PAYLOAD}'\nowner: team-customers\n"), True),
    "primary_key": (lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: c.update(primary_key=[PAYLOAD])), True),
    "struct_field_in_type": (
        lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: column(c, "segment").update(type=f'STRUCT("{PAYLOAD.replace(chr(34), chr(34) * 2)}" VARCHAR)')),
        False,
    ),
    "type_itself": (lambda s, d: edit_contract(d, "customers.raw_customers", lambda c: column(c, "segment").update(type=f"VARCHAR{PAYLOAD}")), True),
    "csv_header": (lambda s, d: rewrite_csv(s, f"SELECT *, 1 AS \"{PAYLOAD.replace(chr(34), chr(34) * 2)}\" FROM t"), False),
    "source_file_name": (extra_source_file, False),
    "quality_rule_value": (
        lambda s, d: edit_contract(
            d, "customers.customer_profiles", lambda c: c["quality"][0]["value_set"].append(PAYLOAD)
        ),
        False,
    ),
}


def canary_alive() -> bool:
    with duckdb.connect(str(warehouse_path("customers")), read_only=True) as connection:
        return connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'canary'"
        ).fetchone()[0] == 1


@pytest.mark.parametrize("where", sorted(INJECTIONS))
def test_injected_name_is_never_executed(where, published_mesh, domains_copy):
    plant, refused = INJECTIONS[where]
    with duckdb.connect(str(warehouse_path("customers"))) as connection:
        connection.execute("CREATE TABLE main.canary AS SELECT 1 AS alive")
    plant(published_mesh / "sources", domains_copy)

    [customers] = [d for d in load_mesh() if d.path.name == "customers"]
    assert (customers.error is not None) == refused, customers.error
    outcomes = materialize_products(list(customers.products))
    assert canary_alive()
    if not refused:  # quoted: either published, or refused at run time with the name shown as data
        assert all(o.ok for o in outcomes) or any("DROP TABLE main.canary" in o.message for o in outcomes), outcomes
