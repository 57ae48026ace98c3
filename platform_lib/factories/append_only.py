"""Append-only sources: read only the files the published version was not read from.

A source that gets a file a day (`source.append_only: true`) would otherwise be read
whole every run, a year of files for one day's rows. The published version records the
files it was read from, each with its size and modification time (`Snapshot.source_files`);
the next run reads the files not among them, puts the published rows before theirs, and
the whole candidate goes through the contract's checks as any other. Since the record is
part of the published version, a run that fails, is refused or is killed changes nothing:
the next one reads the same new files again.

A file read before is not read again: changed, its rows stay as first read, and the
summary notes it until a full refresh; gone, they stay all the same (the files of an
append-only source may be archived), and it is not read twice if it comes back.
A full refresh (`mesh materialize --full-refresh`, or the run tag `mesh/full_refresh`)
reads every file as a source that is not append-only is read, and so does a run after
the published version's columns changed in the contract.

A public product's port masks its PII, so its published rows cannot be added to: the
contract refuses `append_only` there (contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from platform_lib import output_port
from platform_lib.contract import Product
from platform_lib.storage import PortError, candidate, column_types, create_candidate, parquet_file, sources_dir

FULL_REFRESH_TAG = "mesh/full_refresh"
"""A run with this tag set to "true" reads every file of an append-only source."""


def fingerprint(file: Path) -> str:
    """What tells a file from one written again under its name: size and modification time."""
    stat = file.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class Plan:
    """What an ingest reads, every file or those new since `base`, and what the version it
    publishes records of the files (`Snapshot.source_files`)."""

    read: list[Path]
    record: dict[str, str]
    base: output_port.Snapshot | None = None
    """The published version the rows read are added to."""
    changed: tuple[str, ...] = ()
    """Files read into `base` that changed since, relative to the sources folder."""

    @property
    def read_before(self) -> int:
        return len(self.record) - len(self.read)


def plan(connection: duckdb.DuckDBPyConnection, product: Product, files: list[Path], full_refresh: bool) -> Plan:
    """`files`: the source's files, under the sources folder."""
    if not product.source.append_only:
        return Plan(files, {})
    root = sources_dir().resolve()
    by_name = {str(file.relative_to(root)): file for file in files}
    marks = {name: fingerprint(file) for name, file in by_name.items()}
    every = Plan(files, marks)
    if full_refresh:
        return every
    try:
        base = output_port.current(product.id)
        fits = base is not None and bool(base.source_files) and column_types(connection, _rows(base)) == product.column_types
    except (PortError, duckdb.Error):  # a damaged port: the files are the truth
        return every
    if not fits:  # none yet, or published before the contract's columns changed
        return every
    new = {name: mark for name, mark in marks.items() if name not in base.source_files}
    # A file read before keeps its mark: changed, it is noted until a full refresh; gone
    # (archived) and back, it is not read twice.
    changed = tuple(name for name, mark in base.source_files.items() if name in marks and marks[name] != mark)
    return Plan([by_name[name] for name in new], {**base.source_files, **new}, base, changed)


def add_base(connection: duckdb.DuckDBPyConnection, product: Product, plan: Plan) -> None:
    """Put the base's rows before those read into the candidate, or make them the candidate
    when no file is new."""
    read = f" UNION ALL BY NAME SELECT * FROM {candidate(product.name)}" if plan.read else ""
    create_candidate(connection, product.name, f"SELECT * FROM {_rows(plan.base)}{read}")


def _rows(snapshot: output_port.Snapshot) -> str:
    return parquet_file(snapshot.path)
