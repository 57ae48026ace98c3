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
    replaced: Snapshot
    """The version consumers read until now."""
    stale_readers: list[Snapshot]
    """The versions other products serve now that were built from other data than the served one's."""


def rollback(product: Product, to: str | None = None) -> RolledBack:
    """Serve version `to` again; by default the newest retained one older than the data served
    now. Under the domain's write lock (waiting for a run of the domain that holds it), so
    that the versions it reads are still those on disk when it publishes."""
    if output_port.current(product.id) is None:  # before connecting, which would create the domain's file
        raise RollbackError(f"{product.id} has never been published: there is nothing to roll back")
    with closing(storage.connect(product.domain)) as connection:
        live = output_port.current(product.id)
        if attempt := output_port.building(product.id):
            raise RollbackError(f"{product.id}: run {attempt['run_id']} is building it (since {attempt['at']}): roll back once it has ended")
        retained = [v for v in output_port.versions(product.id) if v not in output_port.unpublished(product.id)]
        earlier = [v for v in retained if v < live.data_version]
        to = to or (earlier[-1] if earlier else None)
        if to is None:
            raise RollbackError(f"{product.id}: no version older than the served one ({live.data_version}) is retained")
        if to not in retained:
            raise RollbackError(f"{product.id}: no version {to} is retained; retained: {', '.join(retained)}")
        old = output_port.snapshot(product.id, to)
        if old.data_version == live.data_version:
            raise RollbackError(f"{product.id}: {to}'s data is the one served already ({live.version})")
        if old.contract_version != product.version:
            raise RollbackError(
                f"{product.id}: {to} was published under contract version {old.contract_version}, the contract is at "
                f"{product.version} now: its consumers expect that contract's schema. Roll back the contract first, or pick "
                "a version published under it"
            )
        served = serve.restore(connection, product, old)
    _observe(product, served, live)
    return RolledBack(served, live, _stale_readers(product.id, served))


def _observe(product: Product, served: Snapshot, replaced: Snapshot) -> None:
    """The UI shows a product's latest materialization, here a withdrawn version's: an
    observation in the instance of DAGSTER_HOME, if any, says what consumers read now
    (as a refused candidate's does). Not a materialization: the data is no newer."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    import dagster as dg

    metadata = {"served_version": served.version, "restored_from": served.restored_from, "replaced_version": replaced.version}
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=asset_key(product.id), metadata=metadata))


def _stale_readers(product_id: str, served: Snapshot) -> list[Snapshot]:
    """The versions other products serve now that were built from other data than the served one's
    (or from a version pruned since, whose record of what data it held is gone)."""

    def data_read(reader: Snapshot) -> str | None:
        read = output_port.snapshot(product_id, reader.inputs[product_id])
        return read and read.data_version

    return [s for s in lineage.readers(product_id) if _serves(s) and data_read(s) != served.data_version]


def _serves(snapshot: Snapshot) -> bool:
    live = output_port.current(snapshot.product)
    return live is not None and live.version == snapshot.version
