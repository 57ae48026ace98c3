"""`mesh contract-diff`: every contract compared with its version at a git ref.

Each change is breaking (a consumer or producer written against the old contract
can fail or silently read something else) or compatible. A breaking change to a
product that was public at the base needs a major version bump; without one it is
a violation, in the same one-line form as the policies'. Removing a public product
outright is always a violation: the way out is a major version that makes it
internal (its consumers then fail `mesh validate`), then its removal. A version
lower than the base's is a violation for every product, public or internal.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platform_lib.contract import Column, Product, as_written, parse_duration
from platform_lib.governance.policies import Violation, shown_path
from platform_lib.governance.types import widens
from platform_lib.mesh import LoadedDomain, load_mesh


class DiffError(RuntimeError):
    """The base cannot be read (not a git repository, unknown ref)."""


@dataclass(frozen=True)
class Change:
    product: str
    breaking: bool
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'compatible'} {self.product}: {self.what}"


def _git(root: Path, *args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True)
    if result.returncode:
        raise DiffError(f"git {' '.join(args)}: {result.stderr.decode().strip()}")
    return result.stdout


def load_at_ref(domains_root: Path, ref: str, into: Path) -> list[LoadedDomain]:
    """The mesh's domains as they were at `ref`, extracted into `into`; none if the folder did not exist."""
    top = Path(_git(domains_root, "rev-parse", "--show-toplevel").decode().strip())
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError:
        raise DiffError(f"{ref} is not a commit, branch or tag of {top}") from None
    prefix = domains_root.resolve().relative_to(top.resolve()).as_posix()
    if not _git(top, "ls-tree", "--name-only", ref, prefix).strip():
        return []
    archive = _git(top, "archive", "--format=tar", ref, prefix)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    with as_written():
        return load_mesh(into / prefix)


def _published_mask(product: Product, column: Column) -> str:
    """What the output port holds for a column: clear values, a hash, or NULL."""
    return product.port_mask(column) or "clear"


def _column_changes(base: Product, head: Product) -> list[tuple[bool, str]]:
    old = {c.name: c for c in base.columns}
    new = {c.name: c for c in head.columns}
    changes: list[tuple[bool, str]] = []
    for name in old.keys() - new.keys():
        changes.append((True, f"column {name} removed or renamed"))
    for name in new.keys() - old.keys():
        if new[name].required:
            changes.append((True, f"column {name} added as required; producers do not supply it yet (add it as nullable first)"))
        else:
            changes.append((False, f"column {name} added as nullable"))
    for name in old.keys() & new.keys():
        was, now = old[name], new[name]
        if was.type != now.type:
            if widens(was.type, now.type):  # every old value fits, but a consumer's contract names the old type
                changes.append((True, f"column {name} type widened from {was.type} to {now.type}; "
                                      "consumers that pass it through fail their schema check until their contracts follow"))
            else:
                changes.append((True, f"column {name} type changed from {was.type} to {now.type}, which does not widen"))
        if not was.required and now.required:
            changes.append((True, f"column {name} made required; producers that send nulls now fail"))
        if was.required and not now.required:
            changes.append((True, f"column {name} made nullable; consumers that rely on a value now get nulls"))
        if _published_mask(base, was) != _published_mask(head, now):
            changes.append(
                (True, f"column {name} published values change ({_published_mask(base, was)} -> {_published_mask(head, now)})")
            )
        if was.description != now.description:
            changes.append((False, f"column {name} description changed"))
    # The output port is a Parquet file of the contract's columns in contract order (serve.published_select),
    # and `SELECT *` hands that order on: a reader that goes by position (INSERT INTO t SELECT *, UNION ALL
    # without BY NAME, a frame unpacked by position) silently reads another column's values, which no schema
    # check sees (they match by name). So moving a kept column, or adding one before a kept one, is breaking;
    # adding after all of them is not. A removal, breaking on its own, is not reported as a reorder too.
    if list(new) != [name for name in old if name in new] + [name for name in new if name not in old]:
        changes.append((True, f"column order changed from ({', '.join(old)}) to ({', '.join(new)}); "
                              "readers by position read other columns (keep the order, add new columns at the end)"))
    return sorted(changes, key=lambda change: change[1])


def compare(base: Product, head: Product) -> list[Change]:
    """The changes from one version of a product's contract to another."""
    changes = _column_changes(base, head)
    if base.access == "public" and head.access == "internal":
        changes.append((True, "access narrowed from public to internal"))
    if base.access == "internal" and head.access == "public":
        changes.append((False, "access widened from internal to public"))
    if base.primary_key != head.primary_key:
        changes.append((True, f"primary key changed from ({', '.join(base.primary_key)}) to ({', '.join(head.primary_key)})"))
    if base.freshness and (
        head.freshness is None or parse_duration(head.freshness.fail_after) > parse_duration(base.freshness.fail_after)
    ):
        loosened = head.freshness.fail_after if head.freshness else "none"
        changes.append((True, f"freshness SLO loosened from {base.freshness.fail_after} to {loosened}"))
    if base.description != head.description:
        changes.append((False, "description changed"))
    for field in ("source", "inputs", "schedule", "retention", "quality", "tier", "owner"):
        if getattr(base, field) != getattr(head, field):
            changes.append((False, f"{field} changed"))
    return [Change(head.id, breaking, what) for breaking, what in changes]


def _release(version: str) -> tuple[int, ...]:
    """A semantic version as numbers, compared as semver does (1.10.0 is after 1.9.0)."""
    return tuple(int(part) for part in version.split("."))


def _major(version: str) -> int:
    return _release(version)[0]


def gate(base: Product, head: Product | None, changes: list[Change], readers: list[str]) -> Violation | None:
    """The violation, if a product public at the base breaks without a major version bump;
    `readers` are the products of the head mesh that read it, for the fix to name."""
    if base.access != "public" or not any(c.breaking for c in changes):
        return None
    if head is None:
        return Violation(
            shown_path(base.path),
            base.id,
            "major-version",
            f"public product {base.id} {base.version} is removed",
            f"keep it, and first publish a major version ({_major(base.version) + 1}.0.0) that makes it `access: internal`",
        )
    if _major(head.version) > _major(base.version):
        return None
    named = f" ({', '.join(readers)})" if readers else ""
    return Violation(
        shown_path(head.path),
        head.id,
        "major-version",
        f"breaking change to public product without a major version bump ({base.version} -> {head.version})",
        f"set `version: {_major(base.version) + 1}.0.0` and tell its consumers{named}, or make the change compatible",
    )


def lowered(base: Product, head: Product) -> Violation | None:
    """The violation, if the head's version is lower than the base's, whatever the product's access:
    each snapshot of its output port records the contract version it was published under
    (`snapshot.json`, `mesh lineage`), and consumers read a higher version as a later contract."""
    if _release(head.version) >= _release(base.version):
        return None
    return Violation(
        shown_path(head.path),
        head.id,
        "version-order",
        f"field `version` goes down from {base.version} to {head.version}",
        f"versions only grow: set `version` to {base.version} or higher",
    )


@dataclass(frozen=True)
class DiffReport:
    changes: list[Change]
    violations: list[Violation]
    unloadable: list[str]
    """Why a domain was not compared: it does not load, at the head or at the base."""
    head_unloadable: bool
    """A domain of the head is among them: its changes are unknown, so the diff cannot pass."""


def contract_diff(head_mesh: list[LoadedDomain], base_mesh: list[LoadedDomain]) -> DiffReport:
    """Compare every product of the base mesh with the head mesh, domain by domain."""
    unloadable = sorted({str(d.error) for d in head_mesh + base_mesh if d.error})
    broken = {d.path.name for d in head_mesh + base_mesh if d.error}
    base = {p.id: p for d in base_mesh if d.path.name not in broken for p in d.products}
    head = {p.id: p for d in head_mesh if d.path.name not in broken for p in d.products}
    changes: list[Change] = []
    violations: list[Violation] = []
    for product_id in sorted(base.keys() | head.keys()):
        old, new = base.get(product_id), head.get(product_id)
        if old is None:
            changes.append(Change(product_id, False, f"product added ({new.access})"))
            continue
        found = compare(old, new) if new else [Change(product_id, True, f"product removed (was {old.access})")]
        changes += found
        if violation := gate(old, new, found, sorted(p.id for p in head.values() if product_id in p.inputs)):
            violations.append(violation)
        if new and (violation := lowered(old, new)):
            violations.append(violation)
    return DiffReport(changes, violations, unloadable, any(d.error for d in head_mesh))


def diff_against(ref: str, domains_root: Path, head_mesh: list[LoadedDomain]) -> DiffReport:
    with tempfile.TemporaryDirectory(prefix="mesh-base-") as folder:
        report = contract_diff(head_mesh, load_at_ref(domains_root, ref, Path(folder)))
    # A base file is named as git names it, `REF:path`, not by the folder it was read from.
    return dataclasses.replace(report, unloadable=[u.replace(f"{folder}/", f"{ref}:") for u in report.unloadable])
