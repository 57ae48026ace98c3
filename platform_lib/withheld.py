"""Error text that may quote a PII value keeps only its kind.

DuckDB quotes the value a cast or a function failed on, and a transform's Python
exception may carry one. Such text travels far: the step's failure in Dagster's event
log, `failed.json` in the port, `mesh status`, the catalog, and the alerts posted to a
team's chat. So when a product, or an input it reads, holds a PII column in clear, an
error that may have seen a value is shown as its kind alone, as the ingest shows a bad
value of a PII column. Errors about the SQL's text (parser, binder, catalog, dbt's
compilation) never saw a row and stay whole, as they are what a team debugs most, and so
do those about the machine (a file, memory).
"""

from __future__ import annotations

import re
from typing import Collection

from platform_lib.contract import Product

VALUE_FREE_ERRORS = (
    "Parser Error:", "Syntax Error:", "Binder Error:", "Catalog Error:", "Compilation Error",  # the query's text
    "IO Error:", "Out of Memory Error:", "Permission Error:",  # the machine
)
"""DuckDB's (and dbt's) errors that quote no value of a row."""
KIND = re.compile(r"\b([A-Z][A-Za-z]*(?: [A-Za-z]+)* Error):")


def clear_pii_read(products: Collection[Product]) -> list[str]:
    """The PII columns, `<product id>.<column>`, the products hold or read in clear: their own,
    and their inputs' served unmasked (an internal product's: a public one's port masks its PII)."""
    from platform_lib.mesh import load_mesh, products_by_id  # only on an error's way out

    known = products_by_id(load_mesh())
    found = [f"{p.id}.{c.name}" for p in products for c in p.pii_columns]
    for input_id in sorted({i for p in products for i in p.inputs}):
        if upstream := known.get(input_id):
            masked = {c.name for c in upstream.masked_columns}
            found += [f"{input_id}.{c.name}" for c in upstream.pii_columns if c.name not in masked]
    return sorted(set(found))


def shown(text: str, products: Collection[Product], kind: str | None = None) -> str:
    """`text` as an error message may show it: whole, or, when it may quote a value of a PII
    column the products read, its kind and why not more. `kind` names a Python exception's
    (which may say anything); without it, `text` is DuckDB's or dbt's and says its kind."""
    if kind is None and any(value_free in text for value_free in VALUE_FREE_ERRORS):
        return text
    pii = clear_pii_read(products)
    if not pii:
        return text
    found = kind or (match[1] if (match := KIND.search(text)) else "an error")
    return f"{found} (the rest of its text is withheld: it may quote a value, and this step reads PII columns {', '.join(pii)})"
