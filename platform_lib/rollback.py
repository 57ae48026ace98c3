"""`mesh rollback PRODUCT [--to VERSION]`: consumers read an earlier version's data again, at once.

A version that passed every check can still be wrong (a source sent last month's file, a
join lost its filter). Until the team has fixed it, consumers should read the last good
data: rollback serves a retained version again, as a new version of its own (see
`output_port.restore`), under the domain's write lock as a run publishes. It does
not rebuild anything: the products that read a version no longer served are named, to
be materialized again, and the product's next run builds from its sources as before.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass

from platform_lib import lineage, output_port, storage
from platform_lib.contract import Product
from platform_lib.factories import serve
from platform_lib.factories.quality import asset_key
from platform_lib.output_port import Snapshot


class RollbackError(Exception):
    """Why a version cannot be served again; the message names the product and the versions."""


@dataclass(frozen=True)
class RolledBack:
    served: Snapshot
    """The new version, whose data is `served.restored_from`'s."""
    withdrawn: list[str]
    """The versions served after that one, which consumers no longer read."""
    stale_readers: list[Snapshot]
    """The versions other products serve now that were built from a withdrawn version."""


def rollback(product: Product, to: str | None = None) -> RolledBack:
    """Serve version `to` again; by default the newest retained one older than the data served
    now. Under the domain's write lock (waiting for a run of the domain that holds it), so
    that the versions it reads are still those on disk when it publishes."""
    with closing(storage.connect(product.domain)) as connection:
        live = output_port.current(product.id)
        if live is None:
            raise RollbackError(f"{product.id} has never been published: there is nothing to roll back")
        if attempt := output_port.building(product.id):
            raise RollbackError(f"{product.id}: run {attempt['run_id']} is building it (since {attempt['at']}): roll back once it has ended")
        original = live.restored_from or live.version
        retained = [v for v in output_port.versions(product.id) if v not in output_port.unpublished(product.id)]
        earlier = [v for v in retained if v < original]
        to = to or (earlier[-1] if earlier else None)
        if to is None:
            raise RollbackError(f"{product.id}: no version older than the served one ({original}) is retained")
        if to not in retained:
            raise RollbackError(f"{product.id}: no version {to} is retained; retained: {', '.join(retained)}")
        if to in (live.version, original):
            raise RollbackError(f"{product.id}: {to}'s data is the one served already ({live.version})")
        old = output_port.snapshot(product.id, to)
        if old.contract_version != product.version:
            raise RollbackError(
                f"{product.id}: {to} was published under contract version {old.contract_version}, the contract is at "
                f"{product.version} now: its consumers expect that contract's schema. Roll back the contract first, or pick "
                "a version published under it"
            )
        served = serve.restore(connection, product, old)
    withdrawn = [v for v in retained if v > to]
    _observe(product, served, withdrawn)
    stale = [s for s in lineage.readers(product.id) if s.inputs[product.id] in withdrawn and _serves(s)]
    return RolledBack(served, withdrawn, stale)


def _observe(product: Product, served: Snapshot, withdrawn: list[str]) -> None:
    """The UI shows a product's latest materialization, here a withdrawn version's: an
    observation in the instance of DAGSTER_HOME, if any, says what consumers read now
    (as a refused candidate's does). Not a materialization: the data is no newer."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    import dagster as dg

    metadata = {"served_version": served.version, "restored_from": served.restored_from, "withdrawn": ", ".join(withdrawn)}
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=asset_key(product.id), metadata=metadata))


def _serves(snapshot: Snapshot) -> bool:
    live = output_port.current(snapshot.product)
    return live is not None and live.version == snapshot.version
