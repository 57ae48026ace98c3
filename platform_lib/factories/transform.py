"""Transform: a product's inputs into its candidate table, with SQL or pandas.

Inputs are always read through their output ports: before a transform runs, each
input `<domain>.<product>` becomes a view over the snapshot its pointer names (the
domain's own products are already views in `main`). So SQL names inputs by product
id, and the versions read are recorded as the new snapshot's provenance.
"""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import duckdb

from platform_lib import output_port, withheld
from platform_lib.contract import Column, Product
from platform_lib.mesh import domains_dir
from platform_lib.storage import WHOLE_NUMBER_TYPES, cast, column_types, create_candidate, data_frame, literal, parquet_file, quote

if TYPE_CHECKING:
    import pandas as pd


class TransformError(RuntimeError):
    """The transform failed; the message names the product and its file."""


def input_relation(product: Product, input_id: str) -> tuple[str, str]:
    """Where SQL finds an input, as (schema, name): `<domain>.<product>`, or `main.<product>` for the domain's own."""
    domain, name = input_id.split(".", 1)
    return ("main" if domain == product.domain else domain), name


def attach_inputs(
    connection: duckdb.DuckDBPyConnection, product: Product, relations: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, str]:
    """Point a view at each input's current snapshot; return the versions read.

    `relations` maps the inputs to attach to the name parts of the view each gets
    (schema and name, or catalog, schema and name: a dbt project's sources and models
    say where they are read); by default every input gets its `input_relation`.
    """
    if relations is None:
        relations = {i: input_relation(product, i) for i in product.inputs}
    versions = {}
    for input_id, parts in relations.items():
        try:
            snapshot = output_port.current(input_id)
        except output_port.PortError as error:
            raise TransformError(f"{product.id}: input {input_id}: {error}") from None
        if snapshot is None:
            domain, name = input_id.split(".", 1)
            contract = domains_dir() / domain / "products" / f"{name}.yaml"
            if not contract.exists():  # a dbt source's name (`mesh validate` names them too)
                raise TransformError(f"{product.id}: input {input_id} is no product of the mesh (there is no {contract}): is its name right?")
            raise TransformError(f"{product.id}: input {input_id} has never been published; materialize it first")
        if not snapshot.path.is_file():
            raise TransformError(
                f"{product.id}: input {input_id}: {output_port.port_dir(input_id) / output_port.POINTER} names version "
                f"{snapshot.version}, whose data {snapshot.path} is missing; materialize {input_id} again"
            )
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {'.'.join(map(quote, parts[:-1]))}")
        connection.execute(
            f"CREATE OR REPLACE VIEW {'.'.join(map(quote, parts))} AS SELECT * FROM {parquet_file(snapshot.path)}"
        )
        versions[input_id] = snapshot.version
    return versions


def run_sql(connection: duckdb.DuckDBPyConnection, product: Product) -> None:
    try:
        create_candidate(connection, product.name, product.sql)
    except duckdb.Error as error:
        raise TransformError(f"{product.id}: {product.sibling('.sql')}: {withheld.shown(str(error).strip(), [product])}") from None


def _load_function(product: Product) -> Callable[..., pd.DataFrame]:
    module_file = product.sibling(".py")
    spec = importlib.util.spec_from_file_location(f"mesh_transform_{product.domain}_{product.name}", module_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise TransformError(f"{product.id}: {module_file} does not import: {error!r}") from error
    function = getattr(module, "transform", None)
    if not callable(function):
        raise TransformError(f"{product.id}: {module_file} must define transform(inputs) -> DataFrame")
    return function


def _as_contract_type(column: Column, returned: str) -> str:
    """A column of the returned frame, of DuckDB type `returned`, as the contract's type.
    pandas has no date type, so a DATE column comes as timestamps: one with a time of day
    stops the query, since the cast would drop the time without a word."""
    name = quote(column.name)
    if column.type in WHOLE_NUMBER_TYPES and returned not in WHOLE_NUMBER_TYPES:
        return f"{cast(f'{name}::VARCHAR', column, strict=True)} AS {name}"
    if column.type == "DATE" and returned.startswith("TIMESTAMP"):
        timed = literal(
            f"column {column.name}: a value has a time of day (in UTC) and the contract's type is DATE, which would drop it; "
            "keep the date alone (Series.dt.normalize()) or make the column a TIMESTAMP"
        )
        return f"CASE WHEN {name} <> date_trunc('day', {name}) THEN error({timed}) ELSE CAST({name} AS DATE) END AS {name}"
    return f"CAST({name} AS {column.type}) AS {name}"


def run_pandas(connection: duckdb.DuckDBPyConnection, product: Product) -> None:
    """Call `transform(inputs)` from the `.py` beside the contract.

    `inputs` maps each input's product id to a DataFrame. The returned frame is cast
    to the contract's column types, since pandas has no DECIMAL or DATE of its own, and
    an integer column with a missing value is float64: such a column must hold whole
    numbers (`storage.cast`), a fraction fails the step instead of being rounded; a
    DATE column must hold midnights, a time of day fails it instead of being dropped. A
    column the frame lacks is left out, for the schema check to name, as for SQL.
    """
    # Imported here: every code location imports this module, few run pandas (~0.5 s and 80 MB each).
    import pandas as pd

    frames = {}
    for input_id in product.inputs:
        schema, name = input_relation(product, input_id)
        frames[input_id] = data_frame(connection, f"{quote(schema)}.{quote(name)}")
    function = _load_function(product)
    try:
        result = function(frames)
    except Exception as error:
        # The team's own line, since the step's failure shows a message, not the traceback.
        own = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == product.sibling(".py")]
        where = f" at line {own[-1]}" if own else ""
        said = withheld.shown(repr(error), [product], kind=type(error).__name__)
        # A KeyError is most often a misspelt input id or column, which a withheld text would not name.
        names = "; ".join(f"{i} ({', '.join(map(str, f.columns))})" for i, f in frames.items()) if isinstance(error, KeyError) else ""
        hint = f"; the inputs and their columns: {names}" if names else ""
        raise TransformError(f"{product.id}: {product.sibling('.py')}: transform raised {said}{where}{hint}") from None
    if not isinstance(result, pd.DataFrame):
        raise TransformError(f"{product.id}: {product.sibling('.py')}: transform returned {type(result).__name__}, not a pandas DataFrame")
    twice = sorted({str(c) for c in result.columns[result.columns.duplicated()]})
    if twice:
        raise TransformError(f"{product.id}: {product.sibling('.py')}: the DataFrame has more than one column named {', '.join(twice)}")
    if len(result.columns) == 0:
        raise TransformError(f"{product.id}: {product.sibling('.py')}: the DataFrame has no columns")
    connection.register("mesh_pandas_result", result)
    try:
        returned = column_types(connection, "mesh_pandas_result")
        selected = [_as_contract_type(c, returned[c.name]) for c in product.columns if c.name in returned]
        selected += [quote(str(c)) for c in result.columns if c not in product.column_types]
        create_candidate(connection, product.name, f"SELECT {', '.join(selected)} FROM mesh_pandas_result")
    except duckdb.Error as error:
        said = withheld.shown(str(error).splitlines()[0], [product])
        raise TransformError(f"{product.id}: the DataFrame does not fit the contract: {said}") from None
    finally:
        connection.unregister("mesh_pandas_result")
