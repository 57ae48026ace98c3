"""`mesh lineage PRODUCT`: which upstream snapshot versions a published version was built from,
and which published versions of other products read it.

Every snapshot records the versions of its inputs (`snapshot.json` beside its data,
`current.json` for the live one), so provenance is read from the output ports, not
from a run log: it stays true for as long as the snapshots are retained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from platform_lib import output_port
from platform_lib.output_port import Snapshot
from platform_lib.storage import published_dir


@dataclass
class Node:
    product: str
    version: str
    snapshot: Snapshot | None
    current: str | None
    inputs: list[Node] = field(default_factory=list)

    def label(self) -> str:
        if self.snapshot is None:
            return f"{self.product} {self.version} (pruned: no longer retained)"
        found = self.snapshot
        files = f", from {len(found.source_files)} source files" if found.source_files else ""  # append-only
        restored = f", the data of {found.restored_from} (rolled back)" if found.restored_from else ""
        text = f"{self.product} {self.version} ({found.rows} rows{files}, contract {found.contract_version}, published {found.published_at}{restored})"
        if self.current and self.current != self.version:
            text += f" [current is {self.current}]"
        return text


def _record(product_id: str, version: str) -> Snapshot | None:
    live = output_port.current(product_id)
    if live and live.version == version:
        return live
    return output_port.snapshot(product_id, version)


def upstream(product_id: str, version: str | None = None) -> Node | None:
    """The provenance tree of a version (default: the current one); None if never published."""
    live = output_port.current(product_id)
    version = version or (live.version if live else None)
    if version is None:
        return None
    found = _record(product_id, version)
    node = Node(product_id, version, found, live.version if live else None)
    if found:
        node.inputs = [upstream(i, v) for i, v in sorted(found.inputs.items())]
    return node


def readers(product_id: str) -> list[Snapshot]:
    """Retained snapshots of any product that were built from a version of `product_id`: the access log."""
    found = []
    for manifest in sorted(published_dir().glob(f"*/*/v*/{output_port.MANIFEST}")):
        domain, name, version = manifest.parts[-4:-1]
        if version in output_port.unpublished(f"{domain}.{name}"):
            continue  # renamed in by a killed run, never served
        try:
            record = output_port.snapshot(f"{domain}.{name}", version)
        except output_port.PortError:
            continue  # an unreadable record of another product must not hide this product's lineage
        if record and product_id in record.inputs:
            found.append(record)
    return sorted(found, key=lambda s: (s.product, s.published_at, s.version))


def render(product_id: str) -> list[str]:
    tree = upstream(product_id)
    if tree is None:
        return [f"{product_id} has never been published"]
    lines = [tree.label()]

    def walk(node: Node, prefix: str) -> None:
        for index, child in enumerate(node.inputs):
            last = index == len(node.inputs) - 1
            lines.append(f"{prefix}{'`-- ' if last else '|-- '}{child.label()}")
            walk(child, prefix + ("    " if last else "|   "))

    walk(tree, "")
    readings = readers(product_id)
    lines.append(f"read by {len(readings)} retained snapshot(s):" if readings else "read by no retained snapshot")
    lines += [f"  {r.product} {r.version} read {product_id} {r.inputs[product_id]}" for r in readings]
    return lines
