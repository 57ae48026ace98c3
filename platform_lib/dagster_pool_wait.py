"""A run waiting for a pool slot sleeps until its next claim, as Dagster means it to.

In Dagster 1.13, `InstanceConcurrencyContext.interval_to_next_pending_claim_check`
returns `min(0, ...)`, never more than 0, so an in-process run whose step waits for a
slot (its domain's DuckDB pool, held by another run) loops without sleeping: a core
at 100 percent for as long as it waits, taken from the run it waits for. The mesh
replaces that one method with what its callers expect, the seconds to the earliest
pending claim's next try, until Dagster's own is fixed (`test_pool_wait.py` says when).
"""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min(self._pending_timeouts[step] for step in self._pending_claims) - now)


dagsters_own = InstanceConcurrencyContext.interval_to_next_pending_claim_check
InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check
