"""Where a mesh keeps its data, how a domain opens its own DuckDB file, and how a
relation is read: its column types, its rows as a pandas frame.

    $MESH_DATA_DIR/                 default: .mesh/ in the repository
      sources/<...>                 files the ingest products read
      warehouse/<domain>.duckdb     one file per domain, written only by that domain
      published/<domain>/<product>/ the output ports (see output_port.py), unless
                                    MESH_PORTS_URL puts them elsewhere
      dbt/<domain>/                 dbt's profile, project mirror and runs (see dbt_project.py)

Inside a domain's file, the domain's own products are views in `main` over their
published snapshots, other domains' products it consumes are views in a schema
named after that domain, rejected source rows are in `_quarantine`, and candidates
that failed a blocking check in `_candidate` (where dbt builds the models that are not
products too: dbt_project.py). So
`customers.customer_profiles` means the same product in every domain's SQL.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import duckdb

if TYPE_CHECKING:
    import pandas as pd

    from platform_lib.contract import Column

REPO_ROOT = Path(__file__).resolve().parent.parent
WHOLE_NUMBER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
LOCK_WAIT_SECONDS = float(os.environ.get("MESH_LOCK_WAIT_SECONDS", "120"))
TIME_ZONE = "UTC"  # every step's DuckDB session, dbt's included (`connect`)


def is_number_type(duckdb_type: str) -> bool:
    """Whether a column of this (normalized) DuckDB type holds numbers: whole, floating or decimal."""
    return duckdb_type in WHOLE_NUMBER_TYPES or duckdb_type in ("FLOAT", "DOUBLE") or duckdb_type.startswith("DECIMAL")


def data_dir() -> Path:
    return Path(os.environ.get("MESH_DATA_DIR") or REPO_ROOT / ".mesh").resolve()


def sources_dir() -> Path:
    return data_dir() / "sources"


def warehouse_path(domain: str) -> Path:
    return data_dir() / "warehouse" / f"{domain}.duckdb"


class PortError(ValueError):
    """Output ports cannot be used: MESH_PORTS_URL names no place they can be, or a file of
    a port is unreadable. The message names the URL, or the file and the product."""


def published_dir() -> Path:
    """The root of every output port: MESH_PORTS_URL, default `published/` in the data dir.

    Ports are addressed by URL so a deployment moves them (say, onto a filesystem every
    node mounts) without touching domain files. Only file URLs are served today: object
    stores need DuckDB's httpfs extension, which this project cannot download.
    """
    url = os.environ.get("MESH_PORTS_URL")
    if not url:
        return data_dir() / "published"
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise PortError(f"MESH_PORTS_URL={url}: output ports support file:// URLs (local or mounted shared storage) only")
    if parsed.netloc not in ("", "localhost"):
        raise PortError(
            f"MESH_PORTS_URL={url}: output ports support file:// URLs of this host only, and '{parsed.netloc}' "
            "is read as a host: an absolute path is file:///path (three slashes)"
        )
    if parsed.query or parsed.fragment:
        raise PortError(f"MESH_PORTS_URL={url}: '?' and '#' in a path are written %3F and %23")
    path = Path(unquote(parsed.path))
    if not path.is_absolute():
        raise PortError(f"MESH_PORTS_URL={url}: the path must be absolute (file:///path): every process must find the same ports")
    return path.resolve()


def quote(identifier: str) -> str:
    """Quote a SQL identifier so that no name from a contract is ever executed as SQL."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def column_types(connection: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """The columns of a table, a view or a table function such as `read_parquet(...)`: name -> DuckDB type, in order."""
    return {name: kind for name, kind, *_ in connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def normalize_type(type_name: str) -> str:
    """DuckDB's canonical spelling of a column type; raises ValueError for unknown types."""
    try:
        return str(duckdb.sqltype(type_name))
    except duckdb.Error as error:
        hint = " (a type with a comma is quoted inside `{...}`: \"DECIMAL(10,2)\")" if type_name.count("(") > type_name.count(")") else ""
        raise ValueError(f"'{type_name}' is not a DuckDB type: {str(error).splitlines()[0]}{hint}") from None


def time_format(pattern: str) -> str:
    """`pattern` if DuckDB's strptime takes it (its CSV reader's dateformat and
    timestampformat are strptime formats); raises ValueError naming the bad specifier."""
    try:
        with duckdb.connect() as connection:  # not the module's shared one: contracts may load in threads
            connection.execute("SELECT try_strptime('', ?)", [pattern])
    except duckdb.Error as error:
        raise ValueError(f"'{pattern}' is not a strptime format: {str(error).splitlines()[0]}") from None
    return pattern


class WarehouseError(RuntimeError):
    """A domain's DuckDB file cannot be opened: held by another process too long, or damaged."""


class UnreadableSql(ValueError):
    """SQL whose reads cannot be listed: it does not parse, or DuckDB does not serialize it."""


def relations_read(query: str) -> tuple[set[tuple[str, ...]], set[str]]:
    """What a SELECT reads, as DuckDB parses it: the tables and views it names (`(schema,
    name)`, the catalog first when it names one; common table expressions left out), and
    the table functions it calls (`read_parquet`, `range`, ...). Raises UnreadableSql for
    SQL that does not parse, or that DuckDB does not serialize (a PIVOT without its values)."""
    with duckdb.connect() as connection:
        tree = json.loads(connection.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error") and tree.get("error_type") == "parser":
        raise UnreadableSql(f"the SQL does not parse: {tree['error_message']}")
    if tree.get("error"):
        raise UnreadableSql(
            "the SQL is not a SELECT the platform can read, so what it reads cannot be checked (a PIVOT needs `ON col IN (...)`)"
        )
    named, functions, ctes = [], set(), set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                named.append((node["catalog_name"], node["schema_name"], node["table_name"]))
            if node.get("type") == "TABLE_FUNCTION":
                functions.add(node["function"]["function_name"].lower())
            ctes.update(entry["key"].lower() for entry in node.get("cte_map", {}).get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    tables = {tuple(part for part in parts if part) for parts in named if parts[:2] != ("", "") or parts[2].lower() not in ctes}
    return tables, functions


def cast(text: str, column: Column, *, strict: bool) -> str:
    """SQL for the VARCHAR expression `text` as the column's type: a value that does not
    convert stops the query when `strict`, else it is NULL.

    A whole-number column takes a value only if it is that number exactly (its text read
    as a DOUBLE is equal): DuckDB's own casts round `2.5` to 3 and read `0x10` as 16.
    """
    if column.type not in WHOLE_NUMBER_TYPES:
        return f"{'CAST' if strict else 'TRY_CAST'}({text} AS {column.type})"
    whole = f"TRY_CAST({text} AS {column.type})"
    refused = f" WHEN {text} IS NOT NULL THEN error({literal(f'column {column.name}: a value is not a whole number')})" if strict else ""
    return f"CASE WHEN TRY_CAST({text} AS DOUBLE) = {whole} THEN {whole}{refused} END"


FILES_ONLY = "hive_partitioning = false"
"""The option of every DuckDB reader of files the mesh calls: DuckDB takes a folder named
`key=value` anywhere in a path (`/mnt/env=prod/...`) for a partition, and adds a column `key`
to the rows it reads, which no contract names."""

def parquet_file(path: Path) -> str:
    """SQL: the rows of one Parquet file (a snapshot of an output port), its own columns only."""
    return f"read_parquet({literal(str(path))}, {FILES_ONLY})"


CANDIDATE_SCHEMA = "_candidate"  # failed candidates kept to look into, and dbt's models that are not products
QUARANTINE_SCHEMA = "_quarantine"  # rows a source's reader could not convert (factories/quarantine.py)


def candidate(name: str) -> str:
    """The candidate of product `name` while its step runs: a temporary table of the step's
    connection (`create_candidate`).

    It is published and dropped, so writing it to the domain's file would only cost time
    (a quarter of an ingest of 10M JSON lines). One that fails a blocking check is kept
    in the file for the team to look into (`keep_candidate`).
    """
    return f"temp.main.{quote(name)}"


def create_candidate(connection: duckdb.DuckDBPyConnection, name: str, query: str) -> None:
    """Build product `name`'s candidate from `query`, replacing one an earlier attempt of the step left."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {candidate(name)} AS {query}")


def kept_candidate(name: str) -> str:
    """Where product `name`'s candidate is kept in the domain's file after it failed a blocking check."""
    return f"{CANDIDATE_SCHEMA}.{quote(name)}"


def relation_kind(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    """'TABLE' or 'VIEW', what `schema.name` in the connection's database is, if anything."""
    found = connection.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return None if found is None else ("VIEW" if found[0] == "VIEW" else "TABLE")


def keep_candidate(connection: duckdb.DuckDBPyConnection, name: str, keep: bool, relation: str | None = None) -> None:
    """Keep a failed candidate (by default product `name`'s) as `_candidate.<name>` in the
    domain's file, or drop the one an earlier run kept (or a view an older version left).
    One transaction: an incremental dbt product model goes on from the kept table."""
    kept = kept_candidate(name)
    connection.begin()
    if kind := relation_kind(connection, CANDIDATE_SCHEMA, name):
        connection.execute(f"DROP {kind} {kept}")
    if keep:
        connection.execute(f"CREATE TABLE {kept} AS FROM {relation or candidate(name)}")
    connection.commit()


def connect(domain: str) -> duckdb.DuckDBPyConnection:
    """Open the domain's own DuckDB file for writing, in UTC.

    Dagster pools serialize the steps of one domain, but a manual run, a CLI run and
    a schedule can still meet here: wait for the other writer instead of failing.
    DuckDB's session time zone is the machine's, and it decides what a TIMESTAMPTZ is
    as a TIMESTAMP, a DATE or text: UTC makes a product the same wherever it is built.
    """
    path = warehouse_path(domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            connection = duckdb.connect(str(path))
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise WarehouseError(
                    f"domain {domain}: cannot open its DuckDB file {path} ({str(error).splitlines()[0]}). If it is damaged, "
                    "move it away: the output ports keep every published version, and the next run of the domain makes a new file"
                ) from None
            if time.monotonic() > deadline:
                raise WarehouseError(
                    f"domain {domain}: its DuckDB file {path} is still held by another process after {LOCK_WAIT_SECONDS:g} s "
                    f"(MESH_LOCK_WAIT_SECONDS): {str(error).splitlines()[0]}. A session left open on it (a notebook, the "
                    "DuckDB shell), read-only or not, holds it for as long as it stays open: close it, and read the output ports' Parquet instead"
                ) from None
            time.sleep(0.2)
    connection.execute(f"SET TimeZone = {literal(TIME_ZONE)}")
    for schema in (CANDIDATE_SCHEMA, QUARANTINE_SCHEMA):
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return connection


def data_frame(connection: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """The relation as DuckDB's `.df()` gives it, text columns converted by Arrow.

    `.df()` makes a Python string of every text value, which pandas then packs into
    Arrow again: most of the time of a frame with text (10 times what Arrow takes).
    The relation is read once, as Arrow, so its rows line up whatever their order; the
    other columns go back through DuckDB, cast to their own types again (Arrow carries
    UUID and ENUM as text, HUGEINT as DECIMAL), for `.df()`'s conversion of them
    (DATE as datetime64, DECIMAL as float64). A scan of a table in memory keeps its order.
    """
    import pandas as pd

    types = column_types(connection, relation)
    table = connection.sql(f"SELECT * FROM {relation}").to_arrow_table()
    text = [c for c, kind in types.items() if kind == "VARCHAR"]
    texts = table.select(text).to_pandas()
    others = [c for c in types if c not in text]
    if not others:
        return texts
    own_types = ", ".join(f"CAST({quote(c)} AS {types[c]}) AS {quote(c)}" for c in others)
    frame = connection.from_arrow(table.select(others)).select(own_types).df()
    return pd.concat([frame, texts], axis=1)[list(types)]
