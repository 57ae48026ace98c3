"""`mesh catalog`: every data product of every domain, as one static HTML page, a JSON export
and ODCS contracts (odcs.py).

The catalog joins three sources: the contracts (owner, description, access, schema,
SLOs, inputs), the output ports (latest published version, blocked candidates, failed runs) and,
when a Dagster instance is given, the latest result of every asset check. Consumers
are derived from the other products' inputs, across domains. A column on the page is
as consumers read it (`served_type`, `served_required`, `masked`: a hashed PII column
is text, a redacted one never set).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

from platform_lib import output_port
from platform_lib.contract import Product
from platform_lib.factories.quality import asset_key, check_specs
from platform_lib.mesh import LoadedDomain
from platform_lib.odcs import write_odcs
from platform_lib.storage import parquet_file


def latest_checks(products: list[Product], instance: dg.DagsterInstance | None) -> dict[str, list[dict[str, Any]]]:
    """The latest recorded result of each product's checks, by product id (empty without an instance)."""
    if instance is None:
        return {}
    keys = [spec.key for p in products for spec in check_specs(p)]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    found: dict[str, list[dict[str, Any]]] = {}
    for key, record in sorted(records.items(), key=lambda item: item[0].to_user_string()):
        if record.status == Status.PLANNED:  # the latest run planned it but never got to it: show the last result
            ran = instance.event_log_storage.get_asset_check_execution_history(key, limit=1, status=set(Status) - {Status.PLANNED})
            if not ran:
                continue
            record = ran[0]
        evaluation = record.event.asset_check_evaluation if record.event else None
        found.setdefault(".".join(key.asset_key.path), []).append(
            {
                "check": key.name,
                "status": record.status.value,
                "description": evaluation.description if evaluation else None,
                "run_id": record.run_id,
            }
        )
    return found


def entries(mesh: list[LoadedDomain], instance: dg.DagsterInstance | None = None) -> dict[str, Any]:
    products = [p for d in mesh for p in d.products]
    checks = latest_checks(products, instance)
    consumers = {p.id: sorted(q.id for q in products if p.id in q.inputs) for p in products}
    catalog: dict[str, Any] = {"domains": [], "products": [], "broken_domains": []}
    for loaded in mesh:
        if loaded.error:
            catalog["broken_domains"].append({"folder": loaded.path.name, "error": str(loaded.error)})
            continue
        domain = loaded.domain
        catalog["domains"].append({"name": domain.name, "owner": domain.owner, "description": domain.description})
        for p in loaded.products:
            served = output_port.current(p.id)
            catalog["products"].append(
                {
                    "id": p.id,
                    "domain": p.domain,
                    "owner": p.owner,
                    "description": p.description,
                    "access": p.access,
                    "tier": p.tier,
                    "kind": p.kind,
                    "version": p.version,
                    "asset_key": asset_key(p.id).to_user_string(),
                    "contract": {
                        "columns": [
                            {**c.model_dump(), "served_type": served.type, "served_required": served.required,
                             "masked": c.name in {m.name for m in p.masked_columns}}
                            for c, served in zip(p.columns, p.served_columns)
                        ],
                        "primary_key": list(p.primary_key),
                        "freshness": p.freshness.model_dump() if p.freshness else None,
                        "schedule": p.schedule,
                        "retention": p.retention.model_dump(),
                        "quality": [{"name": r.check_name, "expect": r.expect, "severity": r.severity, **r.kwargs} for r in p.quality],
                    },
                    "upstreams": list(p.inputs),
                    "consumers": consumers[p.id],
                    "published": asdict(served) if served else None,
                    "port": {  # where a reader outside the mesh (a notebook, a BI tool) finds the version consumers read now
                        "pointer": str(output_port.port_dir(p.id) / output_port.POINTER),
                        "data": str(served.path) if served else None,
                    },
                    "blocked": output_port.blocked(p.id),
                    "failed": output_port.failed(p.id),
                    "checks": checks.get(p.id, []),
                }
            )
    return catalog


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _links(ids: list[str]) -> str:
    return ", ".join(f'<a href="#{_e(i)}">{_e(i)}</a>' for i in ids) or "none"


def _product_html(p: dict[str, Any]) -> str:
    contract = p["contract"]
    columns = "".join(
        f"<tr><td>{_e(c['name'])}</td><td>{_e(c['served_type'])}</td><td>{'yes' if c['served_required'] else ''}</td>"
        f"<td>{_e(c['mask'] or 'redact') if c['masked'] else 'in clear, internal' if c['pii'] else ''}</td><td>{_e(c['description'])}</td></tr>"
        for c in contract["columns"]
    )
    freshness = contract["freshness"]["fail_after"] if contract["freshness"] else "none"
    published = p["published"]
    served = f"{_e(published['version'])}: {published['rows']} rows, {_e(published['published_at'])}" if published else "never published"
    blocked = f'<p class="bad">Blocked: {_e(", ".join(p["blocked"]["failed_checks"]))} failed in run {_e(p["blocked"]["run_id"])}</p>' if p["blocked"] else ""
    failed = f'<p class="bad">The latest run, {_e(p["failed"]["run_id"])}, failed before its checks: {_e(p["failed"]["error"])}</p>' if p["failed"] else ""
    now = f", now <code>{html.escape(parquet_file(Path(p['port']['data'])), quote=False)}</code>" if p["port"]["data"] else ""
    checks = "".join(
        f'<li class="{"ok" if c["status"] == "SUCCEEDED" else "bad"}">{_e(c["check"])}: {_e(c["status"])} {_e(c["description"])}</li>'
        for c in p["checks"]
    ) or "<li>no results recorded</li>"
    return f"""
<section id="{_e(p['id'])}" class="product">
  <h3>{_e(p['id'])} <span class="tag">{_e(p['access'])}</span> <span class="tag">{_e(p['kind'])}</span> <span class="tag">v{_e(p['version'])}</span></h3>
  <p>{_e(p['description'])}</p>
  <p>Owner <b>{_e(p['owner'])}</b> &middot; primary key ({_e(', '.join(contract['primary_key']) or 'none')})
     &middot; freshness SLO {_e(freshness)} &middot; keeps {contract['retention']['snapshots']} snapshots (a replaced one {_e(contract['retention']['grace'])} at least)
     &middot; schedule {_e(contract['schedule'] or 'follows its inputs')}</p>
  <p>Upstreams: {_links(p['upstreams'])} &middot; Consumers: {_links(p['consumers'])}</p>
  <p>Published: {served}</p>{blocked}{failed}
  <p>Read it: <code>{_e(p['port']['pointer'])}</code> names the version consumers read{now}</p>
  <table><tr><th>column</th><th>type</th><th>required</th><th>PII mask</th><th>description</th></tr>{columns}</table>
  <ul class="checks">{checks}</ul>
</section>"""


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.tag{font-size:70%;background:#eef;padding:1px 5px}
.bad{color:#b00}.ok{color:#070}.product{border-top:1px solid #999;margin-top:1.5em}"""


def render_html(catalog: dict[str, Any]) -> str:
    body = []
    for domain in catalog["domains"]:
        body.append(f"<h2>Domain {_e(domain['name'])}</h2><p>Owner <b>{_e(domain['owner'])}</b>. {_e(domain['description'])}</p>")
        body += [_product_html(p) for p in catalog["products"] if p["domain"] == domain["name"]]
    body += [f'<p class="bad">Domain folder {_e(b["folder"])} does not load: {_e(b["error"])}</p>' for b in catalog["broken_domains"]]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data mesh catalog</title><style>{STYLE}</style></head>"
        f"<body><h1>Data mesh catalog</h1><p>{len(catalog['products'])} products in {len(catalog['domains'])} domains.</p>"
        + "".join(body)
        + "</body></html>"
    )


def write_catalog(mesh: list[LoadedDomain], folder: Path, instance: dg.DagsterInstance | None = None) -> list[Path]:
    """Write index.html, catalog.json and contracts/<id>.odcs.yaml into `folder`."""
    catalog = entries(mesh, instance)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog.json").write_text(json.dumps(catalog, indent=2, default=str), encoding="utf-8")
    (folder / "index.html").write_text(render_html(catalog), encoding="utf-8")
    contracts = write_odcs([p for d in mesh for p in d.products], folder / "contracts")
    return [folder / "index.html", folder / "catalog.json", *contracts]
