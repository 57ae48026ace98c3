"""Great Expectations suite JSON to and from a contract's `quality:` rules.

A team that already keeps GE suites can import one into its contract, and any
product's rules can be exported for GE tooling. GE 1.x's severity maps to ours
(critical -> error; warning and info -> warn), and a rule's `name` travels in the
expectation's `meta`. Neither direction imports great_expectations.

    python -m platform_lib.quality.suite export domains/orders/products/order_lines.yaml > suite.json
    python -m platform_lib.quality.suite import suite.json      # prints a `quality:` YAML block
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from platform_lib.contract import QualityRule

TO_GE_SEVERITY = {"error": "critical", "warn": "warning"}
FROM_GE_SEVERITY = {"critical": "error", "warning": "warn", "info": "warn"}
NAME_KEY = "mesh_check_name"
RUNTIME_KWARGS = {"batch_id", "result_format", "catch_exceptions"}
"""Kwargs GE adds when it validates, which are no part of a rule."""


def to_suite(name: str, rules: Iterable[QualityRule]) -> dict[str, Any]:
    """A GE 1.x suite document (what `ExpectationSuite.to_json_dict()` writes)."""
    expectations = []
    for rule in rules:
        expectation = {"type": rule.expect, "kwargs": rule.kwargs, "meta": {NAME_KEY: rule.name} if rule.name else {}}
        expectations.append({**expectation, "severity": TO_GE_SEVERITY[rule.severity]})
    return {"name": name, "id": None, "expectations": expectations, "meta": {}, "notes": None}


def from_suite(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's expectations as rules, written the way a contract's `quality:` list holds them."""
    if not isinstance(document, dict):
        raise ValueError("not a Great Expectations suite: expected a JSON object with `expectations`")
    rules = []
    for index, expectation in enumerate(document.get("expectations") or []):
        if not isinstance(expectation, dict):
            raise ValueError(f"expectations[{index}] is {json.dumps(expectation)}, not an object with `type` and `kwargs`")
        expect = expectation.get("type") or expectation.get("expectation_type")  # GE 0.x said expectation_type
        if not expect:
            raise ValueError(f"expectations[{index}] has no type")
        kwargs = {k: v for k, v in (expectation.get("kwargs") or {}).items() if k not in RUNTIME_KWARGS}
        rule: dict[str, Any] = {"expect": expect, **kwargs}
        severity = FROM_GE_SEVERITY.get(expectation.get("severity", "critical"))
        if severity is None:
            raise ValueError(f"expectations[{index}] has severity {expectation['severity']!r}, not critical, warning or info")
        if severity != "error":
            rule["severity"] = severity
        if (expectation.get("meta") or {}).get(NAME_KEY):
            rule["name"] = expectation["meta"][NAME_KEY]
        QualityRule.model_validate(rule)
        rules.append(rule)
    return rules


def _export(contract: Path) -> str:
    from platform_lib.contract import load_domain, load_product

    product = load_product(contract, load_domain(contract.parent.parent))
    return json.dumps(to_suite(product.id, product.quality), indent=2, default=str)


def _import(suite: Path) -> str:
    try:
        rules = from_suite(json.loads(suite.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise ValueError(f"{suite}: not JSON: {error}") from None
    except ValueError as error:  # JSON, but not a suite
        raise ValueError(f"{suite}: {error}") from None
    return yaml.safe_dump({"quality": rules}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_lib.quality.suite", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export", help="a product's rules as GE suite JSON").add_argument("contract", type=Path)
    commands.add_parser("import", help="a GE suite as a `quality:` YAML block").add_argument("suite", type=Path)
    args = parser.parse_args(argv)
    try:
        text = _export(args.contract) if args.command == "export" else _import(args.suite)
    except (OSError, ValueError) as error:  # a file not found, not JSON or no suite, a contract that does not load
        print(f"{parser.prog} {args.command}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
