"""A data product's output port: immutable Parquet snapshots and a pointer to the current one.

    published/<domain>/<product>/
      <version>/data.parquet    one folder per published version, never rewritten
      <version>/snapshot.json   what that version is, which input versions it was built from, which warn checks it failed
      current.json              the pointer: which version consumers read
      blocked.json              present while the latest candidate failed a blocking check
      failed.json               present while the latest run failed before its checks
      building.json             present while a run builds the product: its run and process

A snapshot is written to a hidden temporary folder and renamed into place; only then
is the pointer replaced, with an atomic rename. A process killed at any moment leaves
either the old pointer or the new one, and both name complete snapshots. Consumers
(other domains, `mesh`, notebooks) read only what the pointer names. A run killed
before it recorded an outcome leaves its `building.json`, which names its process: once
that is gone, the run counts as failed (`failed`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb

from platform_lib.processes import process_gone, this_process
from platform_lib.storage import PortError, literal, parquet_file, published_dir

POINTER = "current.json"
BLOCKED = "blocked.json"
FAILED = "failed.json"
BUILDING = "building.json"
FAILED_ERROR_CHARS = 500  # of the error kept in failed.json: its start says what failed, where
SNAPSHOT_FILE = "data.parquet"
MANIFEST = "snapshot.json"
TEMP_PREFIX = ".tmp-"
ROLLBACK_RUN = "rollback"
"""The run id in a restored version's record: no Dagster run made it (its name ends in `-rollback`)."""


@dataclass(frozen=True)
class Snapshot:
    """A published version's record: its own `snapshot.json`, and a copy in `current.json` for the version consumers read."""

    product: str
    version: str
    rows: int
    bytes: int
    published_at: str
    contract_version: str
    run_id: str
    inputs: dict[str, str] = field(default_factory=dict)
    source_files: dict[str, str] = field(default_factory=dict)
    """An append-only source's files this version was read from, relative to the sources
    folder, each with its size and modification time (factories/append_only.py)."""
    failed_warn_checks: list[str] = field(default_factory=list)
    """The checks of warn severity this version failed: they block nothing, so it was
    published, and `mesh status` says so, as consumers read it."""
    restored_from: str | None = None
    """The earlier version whose data this one serves again (`mesh rollback`); it keeps that
    version's record, `published_at` included: the data is as old as it was then."""

    @property
    def data_version(self) -> str:
        """The version whose data this one holds: its own, or the one a rollback restored."""
        return self.restored_from or self.version

    @property
    def path(self) -> Path:
        return port_dir(self.product) / self.version / SNAPSHOT_FILE


def port_dir(product_id: str) -> Path:
    domain, name = product_id.split(".", 1)
    return published_dir() / domain / name


def ports_of(domain: str) -> list[str]:
    """The ids of the products with a port in the domain's folder, whatever their contracts say now."""
    folder = published_dir() / domain
    return sorted(f"{domain}.{p.name}" for p in folder.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX)) if folder.is_dir() else []


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _read_json(path: Path, product_id: str) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise PortError(f"{path}: product {product_id}: not valid JSON ({error}); restore it or delete it") from None
    if not isinstance(content, dict):
        raise PortError(f"{path}: product {product_id}: expected a JSON object")
    return content


def _record(path: Path, product_id: str) -> Snapshot | None:
    content = _read_json(path, product_id)
    if content is None:
        return None
    try:
        return Snapshot(**content)
    except TypeError as error:
        raise PortError(f"{path}: product {product_id}: fields do not match a snapshot record ({error})") from None


def current(product_id: str) -> Snapshot | None:
    """The published version of a product, or None if it was never published."""
    return _record(port_dir(product_id) / POINTER, product_id)


def snapshot(product_id: str, version: str) -> Snapshot | None:
    """A published version's own record, kept beside its data until retention prunes it."""
    return _record(port_dir(product_id) / version / MANIFEST, product_id)


def blocked(product_id: str) -> dict[str, Any] | None:
    """Why the product's latest candidate was not published, while that is still so."""
    return _read_json(port_dir(product_id) / BLOCKED, product_id)


def failed(product_id: str) -> dict[str, Any] | None:
    """Why the product's latest run made no candidate (its source, its SQL, or its process
    died: killed, out of memory), while that is still so. Unlike a blocked one, it stops no
    consumer: nothing new was made, the served version is as good as before."""
    attempt = _read_json(port_dir(product_id) / BUILDING, product_id)
    if attempt and _died(attempt, product_id):
        return _death(attempt, product_id)
    return _read_json(port_dir(product_id) / FAILED, product_id)


def building(product_id: str) -> dict[str, Any] | None:
    """The record of a run building the product now (`mark_building`), while its process
    lives, or runs where this host cannot tell (`processes.process_gone`)."""
    attempt = _read_json(port_dir(product_id) / BUILDING, product_id)
    return attempt if attempt and not _died(attempt, product_id) else None


def _death(attempt: dict[str, Any], product_id: str) -> dict[str, Any]:
    """A dead build's record as a failed run's."""
    why = f"its process {attempt['pid']} on {attempt['host']} ended without an outcome (killed, interrupted, or out of memory) while it built {product_id}"
    return {"run_id": attempt["run_id"], "at": attempt["at"], "error": why}


def _died(attempt: dict[str, Any], product_id: str) -> bool:
    """Whether the process of a `building.json` is gone (`processes.process_gone`)."""
    if not isinstance(attempt.get("pid"), int) or not {"run_id", "at", "host"} <= attempt.keys():
        raise PortError(f"{port_dir(product_id) / BUILDING}: product {product_id}: fields do not match a build's record (run_id, at, host, pid)")
    return process_gone(attempt)


def _mark(product_id: str, name: str, run_id: str, **why: Any) -> None:
    port = port_dir(product_id)
    port.mkdir(parents=True, exist_ok=True)
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write_json_atomically(port / name, {"run_id": run_id, "at": at, **why})


def mark_building(product_id: str, run_id: str) -> None:
    """Record that this process builds the product now: a run killed outright records no
    outcome, and `failed` reads this record as one once the process is gone. A dead build's
    record becomes `failed.json` first: it stays the latest failure until this run has an
    outcome, as a failed run's error does (else a new attempt would hide it, or show an older one)."""
    try:
        attempt = _read_json(port_dir(product_id) / BUILDING, product_id)
        if attempt and _died(attempt, product_id):
            _write_json_atomically(port_dir(product_id) / FAILED, _death(attempt, product_id))
    except PortError:
        pass  # a damaged record of a build: this one replaces it
    _mark(product_id, BUILDING, run_id, **this_process())


def _built(product_id: str, run_id: str) -> None:
    """Remove this run's `building.json`, its outcome recorded; another run's, which may
    have started building the product since (runs without a pool), stays for that run."""
    record = port_dir(product_id) / BUILDING
    try:
        attempt = _read_json(record, product_id)
    except PortError:
        attempt = None  # a damaged record names no run: gone with this outcome
    if attempt is None or attempt.get("run_id") == run_id:
        record.unlink(missing_ok=True)


def mark_blocked(product_id: str, run_id: str, failures: list[str]) -> None:
    _mark(product_id, BLOCKED, run_id, failed_checks=failures)
    (port_dir(product_id) / FAILED).unlink(missing_ok=True)  # this run got as far as its checks
    _built(product_id, run_id)


def mark_failed(product_id: str, run_id: str, error: str) -> None:
    """Record a run that failed before its checks, with `error` on one line (dbt's messages take several)."""
    _mark(product_id, FAILED, run_id, error=" ".join(line.strip() for line in error.splitlines() if line.strip())[:FAILED_ERROR_CHARS])
    _built(product_id, run_id)


STAMP = "%Y%m%dT%H%M%S%fZ"


def new_version(run_id: str, after: str | None = None) -> str:
    """A version name that sorts after `after` (the newest on disk), whatever this host's clock says."""
    now = datetime.now(timezone.utc)
    try:
        newest = datetime.strptime((after or "")[1:].split("-", 1)[0], STAMP).replace(tzinfo=timezone.utc)
        now = max(now, newest + timedelta(microseconds=1))
    except ValueError:  # none yet, or a folder not named by this function
        pass
    return f"v{now.strftime(STAMP)}-{run_id[:8]}"


def publish(
    connection: duckdb.DuckDBPyConnection,
    product_id: str,
    select_sql: str,
    *,
    contract_version: str,
    run_id: str,
    inputs: dict[str, str],
    source_files: dict[str, str] | None = None,
    failed_warn_checks: list[str] | None = None,
) -> Snapshot:
    """Write `select_sql` as a new snapshot and switch the pointer to it. The caller prunes
    (`prune`) once nothing it owns reads the old versions."""

    def write(parquet: Path) -> int:
        connection.execute(f"COPY ({select_sql}) TO {literal(str(parquet))} (FORMAT parquet, COMPRESSION zstd)")
        return connection.execute(f"SELECT count(*) FROM {parquet_file(parquet)}").fetchone()[0]

    record = {"contract_version": contract_version, "inputs": inputs, "source_files": source_files or {}, "failed_warn_checks": failed_warn_checks or []}
    # The candidate passed its checks: unblock first, so a kill between the two never leaves
    # a good new pointer behind a stale blocked.json (consumers would refuse it).
    return _place(product_id, run_id, write, record, clearing=(BLOCKED, FAILED))


def restore(product_id: str, old: Snapshot) -> Snapshot:
    """Serve a retained version's data again, as a new version, and switch the pointer to it
    (the caller prunes, as after `publish`). Its file is a hard link to the old one's, which
    is never rewritten; a new version rather than the pointer moved back keeps versions in
    the order they were served, which `unpublished`, retention and lineage rely on. Why a
    newer candidate was blocked or failed stays recorded: restoring fixes none of it."""

    def write(parquet: Path) -> int:
        try:
            os.link(old.path, parquet)
        except OSError:  # another file system
            shutil.copyfile(old.path, parquet)
        return old.rows

    record = {k: v for k, v in asdict(old).items() if k not in ("product", "version", "rows", "bytes", "run_id")}
    return _place(product_id, ROLLBACK_RUN, write, {**record, "restored_from": old.data_version}, clearing=())


def _place(product_id: str, run_id: str, write: Callable[[Path], int], record: dict[str, Any], clearing: tuple[str, ...]) -> Snapshot:
    """A new version: its data written by `write` (which returns its rows) into a hidden
    folder, renamed into place with its record (published now, unless the record says
    when), then `clearing`'s files removed and the pointer switched."""
    port = port_dir(product_id)
    port.mkdir(parents=True, exist_ok=True)
    for orphan in unpublished(product_id):
        shutil.rmtree(port / orphan)
    on_disk = versions(product_id)
    version = new_version(run_id, after=on_disk[-1] if on_disk else None)
    staging = port / f"{TEMP_PREFIX}{version}"
    staging.mkdir()
    rows = write(staging / SNAPSHOT_FILE)
    snapshot = Snapshot(**{"published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}, product=product_id,
                        version=version, rows=rows, bytes=(staging / SNAPSHOT_FILE).stat().st_size, run_id=run_id)
    _write_json_atomically(staging / MANIFEST, asdict(snapshot))
    os.rename(staging, port / version)
    for done in clearing:
        (port / done).unlink(missing_ok=True)
    _built(product_id, run_id)
    _write_json_atomically(port / POINTER, asdict(snapshot))
    return snapshot


def versions(product_id: str) -> list[str]:
    """Published versions on disk, oldest first."""
    port = port_dir(product_id)
    if not port.exists():
        return []
    return sorted(p.name for p in port.iterdir() if p.is_dir() and p.name.startswith("v"))


def unpublished(product_id: str) -> list[str]:
    """Versions newer than the pointer: renamed into place by a run killed before it switched the pointer.

    Consumers never saw them; removed before the next publish, so they never take a
    place in the retained history.
    """
    try:
        live = current(product_id)
    except PortError:
        return []  # the pointer is unreadable: which versions were served is unknown, delete none
    if live is None:
        return []  # no pointer (never published, or lost): keep what is there, retention prunes it
    return [v for v in versions(product_id) if v > live.version]


def expired(product_id: str, keep: int, grace: timedelta) -> list[str]:
    """Versions retention deletes: beyond the newest `keep`, never the served one, and only
    once the version after each has been on disk for `grace` (`contract.Retention` says why).

    A version folder is never written after its last file, its record, just before the
    pointer moves to it: its modification time is when it was published.
    """
    try:
        live = current(product_id)
    except PortError:
        return []  # which version is served is unknown: delete none
    port = port_dir(product_id)
    on_disk = versions(product_id)
    replaced_before = time.time() - grace.total_seconds()
    return [
        version
        for version, successor in zip(on_disk[:-keep], on_disk[1:])
        if (live is None or version != live.version) and (port / successor).stat().st_mtime <= replaced_before
    ]


def prune(product_id: str, keep: int, grace: timedelta) -> list[str]:
    """Delete the `expired` snapshots, and leftovers of runs killed mid-write.

    Runs under the domain's write lock, so no other writer of this port is active.
    """
    port = port_dir(product_id)
    for leftover in port.glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    old = expired(product_id, keep, grace)
    for version in old:
        shutil.rmtree(port / version)
    return old


def digest(parquet: Path) -> str:
    """A fingerprint of a snapshot's rows, independent of their order and of the Parquet
    layout, so two runs (in-process and distributed, say) can be compared by content."""
    with duckdb.connect() as connection:
        rows, total = connection.execute(f"SELECT count(*), sum(hash(t)) FROM {parquet_file(parquet)} t").fetchone()
    return f"{rows}:{total}"
