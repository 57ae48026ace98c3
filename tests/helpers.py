"""Small helpers the integration tests share: load and run products, spoil a source file, read a port, take webhook posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb

from platform_lib import output_port
from platform_lib.materialize import materialize_products
from platform_lib.outcomes import Outcome
from platform_lib.mesh import load_mesh
from platform_lib.storage import literal


def products(*domains: str):
    """The sample products of `domains` (all when none given), loaded from $MESH_DOMAINS_DIR."""
    selected = [d for d in load_mesh() if not domains or d.path.name in domains]
    for domain in selected:
        if domain.error:
            raise domain.error
    return [p for d in selected for p in d.products]


def run(*domains: str, instance=None) -> dict[str, Outcome]:
    return {o.product: o for o in materialize_products(products(*domains), instance=instance)}


def add_csv_row(mesh_dir: Path, line: str) -> None:
    """Append a raw line to the customers CSV, the way a bad export would."""
    with open(mesh_dir / "sources" / "customers" / "customers.csv", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read_published(product_id: str) -> list[tuple]:
    """All rows of a product's current snapshot, sorted, as a consumer reads them."""
    snapshot = output_port.current(product_id)
    assert snapshot is not None, f"{product_id} was never published"
    with duckdb.connect() as connection:
        return sorted(connection.execute(f"SELECT * FROM read_parquet({literal(str(snapshot.path))})").fetchall(), key=repr)


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """An HTTP endpoint on this machine, and the JSON bodies posted to it so far."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()
