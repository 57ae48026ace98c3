"""The production instance (deploy/dagster.yaml) on this machine's PostgreSQL, for real."""

from __future__ import annotations

import dagster as dg

from platform_lib.factories.quality import asset_key
from platform_lib.localstack import pg_connect
from platform_lib.materialize import materialize_products
from platform_lib.mesh import load_mesh


def test_the_mesh_materializes_through_the_postgres_instance(mesh_dir, dagster_home, postgres_db):
    products = [p for d in load_mesh() for p in d.products]
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        # A run whose step's Celery worker died waits for good: the daemon fails it past this bound.
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 4 * 3600
        outcomes = materialize_products(products, instance=instance)
        assert [o.product for o in outcomes if not o.ok] == []
        for product in products:
            event = instance.get_latest_materialization_event(asset_key(product.id))
            assert event is not None, product.id
        # Pools are instance state too: each domain's pool exists with one slot.
        pools = {p.removeprefix("duckdb_") for p in instance.event_log_storage.get_concurrency_keys()}
        assert pools == {d.path.name for d in load_mesh()}
        assert all(instance.event_log_storage.get_concurrency_info(f"duckdb_{d}").slot_count == 1 for d in pools)

    # The run is stored in this test's own database, not in a file under DAGSTER_HOME.
    with pg_connect(postgres_db) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs")
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cursor.fetchone()[0] == len(products)
    assert not (dagster_home / "history").exists()
