"""A run waiting for its domain's pool slot sleeps between its tries (platform_lib/dagster_pool_wait.py)."""

from __future__ import annotations

import dagster as dg
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

from platform_lib import dagster_pool_wait


def test_a_run_waiting_for_a_held_pool_slot_is_told_to_sleep(dagster_home, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("duckdb_customers", 1)
        assert storage.claim_concurrency_slot("duckdb_customers", "holding-run", "its_step", 0).is_claimed
        with InstanceConcurrencyContext(instance, dg.DagsterRun(job_name="mesh", run_id="waiting-run")) as waiting:
            assert not waiting.claim("duckdb_customers", "customers__raw_customers")
            assert waiting.interval_to_next_pending_claim_check() > 0  # seconds to its next try: it sleeps
            # Dagster's own answer is never above 0, so the run spins a core while it waits. When
            # this fails, Dagster has fixed it: drop dagster_pool_wait.
            assert dagster_pool_wait.dagsters_own(waiting) <= 0
