"""GE suite JSON import and export: what GE writes we read, and what we write GE reads."""

from __future__ import annotations

import json

import great_expectations as gx
import pytest
import yaml
from great_expectations.core.expectation_suite import expectationSuiteSchema

from platform_lib.contract import QualityRule, load_domain, load_products
from platform_lib.mesh import domains_dir
from platform_lib.quality.suite import from_suite, main, to_suite


def _sample_rules() -> list[QualityRule]:
    rules = [r for folder in sorted(domains_dir().iterdir()) for p in load_products(load_domain(folder)) for r in p.quality]
    return rules + [QualityRule(expect="expect_table_row_count_to_equal", value=3, severity="warn", name="exactly_three")]


def test_export_is_read_by_great_expectations_and_imports_back_unchanged():
    rules = _sample_rules()
    suite = gx.ExpectationSuite(**expectationSuiteSchema.load(to_suite("mesh.sample", rules)))
    assert [e.expectation_type for e in suite.expectations] == [r.expect for r in rules]
    assert [e.severity.value for e in suite.expectations].count("warning") == sum(r.severity == "warn" for r in rules)
    back = [QualityRule.model_validate(rule) for rule in from_suite(suite.to_json_dict())]
    assert back == rules


def test_a_suite_written_by_great_expectations_imports_as_rules():
    expectations = [
        gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0, mostly=0.95),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="order_id", severity="warning"),
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, severity="info"),
    ]
    document = json.loads(json.dumps(gx.ExpectationSuite(name="orders", expectations=expectations).to_json_dict()))
    assert from_suite(document) == [
        {"expect": "expect_column_values_to_be_between", "column": "amount", "mostly": 0.95, "min_value": 0},
        {"expect": "expect_column_values_to_not_be_null", "column": "order_id", "severity": "warn"},
        {"expect": "expect_table_row_count_to_be_between", "min_value": 1, "severity": "warn"},
    ]


def test_an_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity 'fatal'"):
        from_suite({"expectations": [{"type": "expect_table_row_count_to_equal", "kwargs": {"value": 1}, "severity": "fatal"}]})


def test_command_line_export_then_import_gives_the_contract_rules(tmp_path, capsys):
    rules = [
        {"expect": "expect_column_values_to_be_between", "column": "price", "min_value": 0, "strict_min": True},
        {"expect": "expect_column_values_to_match_regex", "column": "sku", "regex": "^[A-Z]{3}-\\d+$", "mostly": 0.99},
        {"expect": "expect_table_row_count_to_be_between", "min_value": 1, "severity": "warn", "name": "not_empty"},
    ]
    (tmp_path / "shop" / "products").mkdir(parents=True)
    (tmp_path / "shop" / "domain.yaml").write_text("name: shop\nowner: team-shop\n")
    contract = tmp_path / "shop" / "products" / "items.yaml"
    contract.write_text(yaml.safe_dump({
        "description": "Items.", "source": {"format": "csv", "path": "items.csv"},
        "columns": [{"name": "sku", "type": "VARCHAR"}, {"name": "price", "type": "DOUBLE"}], "quality": rules,
    }))  # fmt: skip
    main(["export", str(contract)])
    suite = tmp_path / "suite.json"
    suite.write_text(capsys.readouterr().out)
    main(["import", str(suite)])
    assert yaml.safe_load(capsys.readouterr().out)["quality"] == rules


@pytest.mark.parametrize(
    ("command", "content", "said"),
    [
        ("import", None, "No such file or directory"),
        ("import", "{bad", "suite.json: not JSON: Expecting property name"),
        ("import", "[1]", "suite.json: not a Great Expectations suite"),
        ("import", '{"expectations": [{"kwargs": {}}]}', "suite.json: expectations[0] has no type"),
        ("import", '{"expectations": ["expect_column_values_to_not_be_null"]}', 'suite.json: expectations[0] is "expect_column_values_to_not_be_null", not an object'),
        ("export", None, "shop/products/items.yaml: product shop.items: file not found"),
        ("export", "columns: [", "shop/products/items.yaml: product shop.items: not valid YAML"),
    ],
)
def test_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys, command, content, said):
    """A missing or malformed file is a line naming it and exit 2, not a stack trace."""
    (tmp_path / "shop" / "products").mkdir(parents=True)
    (tmp_path / "shop" / "domain.yaml").write_text("name: shop\nowner: team-shop\n")
    path = tmp_path / ("suite.json" if command == "import" else "shop/products/items.yaml")
    if content is not None:
        path.write_text(content)
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m platform_lib.quality.suite {command}: ") and said in err and err.count("\n") == 1
