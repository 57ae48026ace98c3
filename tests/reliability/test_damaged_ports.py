"""Output ports damaged by hand, by another host's clock or by a kill at the wrong moment:
a clear message naming the file and the product, and no served version lost."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from platform_lib import output_port
from platform_lib.cli import main
from platform_lib.contract import Retention
from platform_lib.factories.serve import publish
from platform_lib.factories.transform import attach_inputs
from platform_lib.lineage import readers
from platform_lib.materialize import materialize_products
from platform_lib.outcomes import Outcome
from platform_lib.mesh import load_mesh, products_by_id

PROFILES = "customers.customer_profiles"


def materialized(*domains: str) -> dict[str, Outcome]:
    """`mesh materialize <domains>`, in this process: each product's outcome."""
    return {o.product: o for o in materialize_products([p for d in load_mesh() if d.path.name in domains for p in d.products])}


def publish_rows(product_id: str, rows: int) -> output_port.Snapshot:
    with duckdb.connect() as connection:
        return output_port.publish(connection, product_id, f"SELECT * FROM range({rows}) AS t(n)", contract_version="1.0.0", run_id="r", inputs={})


def test_a_lost_pointer_keeps_the_versions_that_were_served(mesh_dir):
    """Without current.json, which versions were served is unknown: none is deleted as never served."""
    kept = [publish_rows("shop.items", n).version for n in (1, 2, 3)]
    (output_port.port_dir("shop.items") / output_port.POINTER).unlink()
    newest = publish_rows("shop.items", 4)
    assert output_port.versions("shop.items") == [*kept, newest.version]


def test_a_new_version_sorts_after_every_version_on_disk_whatever_the_clock(mesh_dir):
    """A version published by a host whose clock is ahead must not end up newer than the served one."""
    first = publish_rows("shop.items", 1)
    port = output_port.port_dir("shop.items")
    ahead = "v29990101T000000000000Z-aheadhst"
    (port / first.version).rename(port / ahead)
    record = {**json.loads((port / output_port.POINTER).read_text()), "version": ahead}
    for file in (port / output_port.POINTER, port / ahead / output_port.MANIFEST):
        file.write_text(json.dumps(record))
    second = publish_rows("shop.items", 2)
    assert second.version > ahead and output_port.current("shop.items").version == second.version
    third = publish_rows("shop.items", 3)
    assert output_port.versions("shop.items") == [ahead, second.version, third.version]


def test_publishing_points_the_domains_view_at_the_new_version_then_prunes(published_mesh):
    """Pruning is the caller's last step (so a kill before it leaves the view over a version
    still on disk): retention still holds once it is done."""
    product = products_by_id(load_mesh())[PROFILES].model_copy(update={"retention": Retention(snapshots=1, grace="0s")})
    with duckdb.connect(str(published_mesh / "warehouse" / "customers.duckdb")) as connection:
        old = output_port.current(PROFILES)
        snapshot = publish(connection, product, f"read_parquet('{old.path}')", "r2", {})
        assert output_port.versions(PROFILES) == [snapshot.version]
        assert connection.execute("SELECT count(*) FROM main.customer_profiles").fetchone()[0] == snapshot.rows


@pytest.mark.parametrize("grace", ["1h", "0s"])
def test_a_consumer_that_read_the_pointer_before_a_publish_still_reads_its_snapshot(grace, published_mesh):
    """Another domain attaches its input (reads the pointer), the producer publishes and prunes
    with a retention of 1, then the consumer's query runs: the grace keeps the replaced
    snapshot on disk for it. Without one (0s) the consumer's step would fail."""
    consumer = products_by_id(load_mesh())["marketing.customer_lifetime_value"]
    producer = products_by_id(load_mesh())[PROFILES].model_copy(update={"retention": Retention(snapshots=1, grace=grace)})
    with duckdb.connect() as reader:
        read = attach_inputs(reader, consumer)[PROFILES]
        with duckdb.connect(str(published_mesh / "warehouse" / "customers.duckdb")) as writer:
            old = output_port.current(PROFILES)
            publish(writer, producer, f"read_parquet('{old.path}')", "r2", {})
        assert output_port.current(PROFILES).version != read
        if grace == "0s":
            with pytest.raises(duckdb.IOException, match=read):
                reader.execute("SELECT count(*) FROM customers.customer_profiles").fetchone()
        else:
            assert reader.execute("SELECT count(*) FROM customers.customer_profiles").fetchone()[0] == old.rows


@pytest.mark.parametrize("damage", ["truncated", "not an object", "other fields"])
def test_an_unreadable_pointer_is_named_and_its_producer_replaces_it(damage, published_mesh, capsys):
    pointer = output_port.port_dir(PROFILES) / output_port.POINTER
    text = pointer.read_text()
    pointer.write_text({"truncated": text[: len(text) // 2], "not an object": "[]", "other fields": '{"version": "v1"}'}[damage])

    clv = materialized("marketing")["marketing.customer_lifetime_value"]
    assert not clv.ok and f"{pointer}: product {PROFILES}" in clv.message

    capsys.readouterr()
    assert main(["lineage", PROFILES]) == 2
    assert capsys.readouterr().err.startswith(f"mesh lineage: {pointer}: product {PROFILES}")

    assert all(o.ok for o in materialized("customers").values())
    assert output_port.current(PROFILES).path.is_file()


def test_an_unreadable_blocked_file_stops_consumers_by_name(published_mesh):
    blocked = output_port.port_dir(PROFILES) / output_port.BLOCKED
    blocked.write_text("{")
    for domain, consumer in (("orders", "orders.order_lines"), ("marketing", "marketing.customer_lifetime_value")):
        outcome = materialized(domain)[consumer]
        assert not outcome.ok and f"{blocked}: product {PROFILES}: not valid JSON" in outcome.message, outcome


def test_a_pointer_to_missing_data_is_named(published_mesh):
    snapshot = output_port.current(PROFILES)
    shutil.rmtree(snapshot.path.parent)
    clv = materialized("marketing")["marketing.customer_lifetime_value"]
    assert not clv.ok and f"names version {snapshot.version}, whose data {snapshot.path} is missing" in clv.message


def test_lineage_lists_only_served_snapshots_as_readers(published_mesh, capsys):
    """A snapshot a killed run renamed in but never pointed at read its inputs for nothing."""
    port = output_port.port_dir("marketing.segment_revenue")
    served = output_port.current("marketing.segment_revenue")
    orphan = "v29990101T000000000000Z-killedrn"
    shutil.copytree(port / served.version, port / orphan)
    (port / orphan / output_port.MANIFEST).write_text(json.dumps({**json.loads((port / served.version / output_port.MANIFEST).read_text()), "version": orphan}))
    hidden = port / f"{output_port.TEMP_PREFIX}{orphan}"
    shutil.copytree(port / orphan, hidden)
    assert [r.version for r in readers("marketing.customer_lifetime_value")] == [served.version]
