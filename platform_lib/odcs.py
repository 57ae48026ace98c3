"""Export of a contract to the Open Data Contract Standard (ODCS v3), for datacontract-cli and catalogs.

Standard fields carry what ODCS has a place for (the schema as the output port serves
it, primary key, required, PII classification, description, team, freshness as an SLA,
quality rules as Great Expectations implementations). Everything else the platform
knows (access, tier, kind, source, inputs, retention, masks, the contract's type of a
column whose mask changed it) goes under `customProperties`, so nothing in the contract
is lost in the export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from platform_lib.contract import DURATION, Column, Product, QualityRule

API_VERSION = "v3.1.0"
LOGICAL_TYPES = [
    (re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$"), "integer"),
    (re.compile(r"^(DECIMAL\(.*\)|FLOAT|DOUBLE)$"), "number"),
    (re.compile(r"^VARCHAR$"), "string"),
    (re.compile(r"^DATE$"), "date"),
    (re.compile(r"^TIMESTAMP.*$"), "timestamp"),
    (re.compile(r"^BOOLEAN$"), "boolean"),
    (re.compile(r".*\[\]$"), "array"),
    (re.compile(r"^(STRUCT|MAP).*$"), "object"),
]


def logical_type(physical: str) -> str | None:
    return next((name for pattern, name in LOGICAL_TYPES if pattern.match(physical)), None)


def _custom(**values: Any) -> list[dict[str, Any]]:
    return [{"property": key, "value": value} for key, value in values.items() if value not in (None, (), [], "")]


def _property(product: Product, column: Column, served: Column) -> dict[str, Any]:
    """A column as consumers read it (`served`); where masking changed it, the contract's type and
    requiredness go under `customProperties`."""
    prop: dict[str, Any] = {
        "name": column.name,
        "physicalType": served.type,
        "logicalType": logical_type(served.type),
        "required": served.required,
        "description": column.description or None,
    }
    if column.name in product.primary_key:
        prop.update(primaryKey=True, primaryKeyPosition=product.primary_key.index(column.name) + 1)
    if column.pii:
        prop.update(classification="restricted", tags=["pii"])
        prop["customProperties"] = _custom(
            pii=True,
            mask=product.port_mask(column),
            contractType=column.type if served.type != column.type else None,
            contractRequired=True if served.required != column.required else None,
        )
    return prop


def _quality(product: Product) -> list[dict[str, Any]]:
    """The contract's rules. They are checked on the candidate, before `serve` masks: a rule
    on a masked column says so, since its values as served (hashes, NULLs) would not pass it."""
    masked = {c.name: product.port_mask(c) for c in product.masked_columns}

    def before_masking(rule: QualityRule) -> str | None:
        columns = [f"{c} ({'hashed' if masked[c] == 'hash' else 'redacted'})" for c in rule.columns if c in masked]
        return f"checked before masking; consumers read {', '.join(columns)}" if columns else None

    return [
        {
            "name": rule.check_name,
            "type": "custom",
            "engine": "greatExpectations",
            "severity": rule.severity,
            "description": before_masking(rule),
            "implementation": {"expectation_type": rule.expect, "kwargs": rule.kwargs},
        }
        for rule in product.quality
    ]


def _slas(product: Product) -> list[dict[str, Any]]:
    slas = []
    if product.freshness:
        amount, unit = DURATION.match(product.freshness.fail_after).groups()
        slas.append({"property": "latency", "value": int(amount), "unit": unit, "description": "fails when older than this"})
    if product.schedule:
        slas.append({"property": "frequency", "value": product.schedule, "scheduler": "cron", "schedule": product.schedule})
    return slas


def to_odcs(product: Product) -> OpenDataContractStandard:
    document = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": product.id,
        "name": product.name,
        "version": product.version,
        "status": "active",
        "domain": product.domain,
        "dataProduct": product.id,
        "description": {"purpose": product.description},
        "team": {"name": product.owner},
        "schema": [
            {
                "name": product.name,
                "physicalName": product.name,
                "physicalType": "table",
                "logicalType": "object",
                "description": product.description,
                "properties": [_property(product, c, s) for c, s in zip(product.columns, product.served_columns)],
                "quality": _quality(product) or None,
            }
        ],
        "slaProperties": _slas(product) or None,
        "customProperties": _custom(
            access=product.access,
            tier=product.tier,
            kind=product.kind,
            inputs=list(product.inputs),
            source=product.source.model_dump() if product.source else None,
            retentionSnapshots=product.retention.snapshots,
            retentionGrace=product.retention.grace,
            freshnessWarnAfter=product.freshness.warn_after if product.freshness else None,
            maxRowDrop=product.max_row_drop,
        ),
    }
    return OpenDataContractStandard.model_validate(document)


def write_odcs(products: list[Product], folder: Path) -> list[Path]:
    """One `<product id>.odcs.yaml` per product in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for product in products:
        path = folder / f"{product.id}.odcs.yaml"
        data = to_odcs(product).model_dump(exclude_none=True, by_alias=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    return written
