"""Rules are checked when a contract loads: the catalog agrees with GE, errors name the field,
and contracts whose rules are all compiled load without importing Great Expectations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform_lib.contract import ContractError, QualityRule, load_domain, load_products
from platform_lib.quality import validate_rule
from platform_lib.quality.catalog import SIGNATURES
from platform_lib.quality.ge_runner import build_expectation, expectation_class
from platform_lib.storage import REPO_ROOT

GENERIC_FIELDS = {
    "id", "meta", "notes", "result_format", "description", "catch_exceptions", "rendered_content",
    "batch_id", "windows", "severity", "row_condition", "condition_parser", "library_metadata", "mostly",
}  # fmt: skip
COLUMNS = {"a", "b", "s"}


@pytest.mark.parametrize("expect", sorted(SIGNATURES))
def test_catalog_signature_matches_great_expectations(expect):
    fields = expectation_class(expect).__fields__
    signature = SIGNATURES[expect]
    assert set(signature.required) | set(signature.optional) == set(fields) - GENERIC_FIELDS
    assert set(signature.required) == {name for name, f in fields.items() if f.required} - GENERIC_FIELDS
    assert signature.mostly == ("mostly" in fields)


def _ge_accepts(rule: QualityRule) -> bool:
    try:
        build_expectation(rule)
        return True
    except Exception:
        return False


def _we_accept(rule: QualityRule) -> bool:
    try:
        validate_rule(rule, COLUMNS)
        return True
    except ValueError:
        return False


GOOD = [
    ("expect_column_values_to_be_between", {"column": "a", "min_value": 0, "strict_max": True, "max_value": 9.5}),
    ("expect_column_values_to_be_between", {"column": "a", "min_value": "2024-01-01"}),
    ("expect_column_values_to_be_in_set", {"column": "s", "value_set": []}),
    ("expect_column_values_to_match_regex", {"column": "s"}),
    ("expect_column_value_lengths_to_equal", {"column": "s", "value": 2, "mostly": 0.5}),
    ("expect_table_columns_to_match_set", {}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"], "ignore_row_if": "never"}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b", "or_equal": True}),
    ("expect_column_values_to_be_increasing", {"column": "a"}),
    ("expect_column_values_to_not_be_null", {"column": "a", "row_condition": 's == "x" and `b` > abs(-1)', "condition_parser": "pandas"}),
    ("expect_column_values_to_not_be_null", {"column": "a", "row_condition": 'col("s")=="x"', "condition_parser": "great_expectations"}),
]
BAD_FOR_BOTH = [
    ("expect_column_values_to_be_betwen", {"column": "a", "min_value": 1}),
    ("expect_column_values_to_be_between", {"column": "a", "min_vlaue": 1}),
    ("expect_column_values_to_be_between", {"column": "a"}),
    ("expect_column_values_to_be_between", {"column": "a", "min_value": "ten"}),
    ("expect_column_value_lengths_to_be_between", {"column": "s"}),
    ("expect_column_values_to_be_in_set", {"column": "s", "value_set": "abc"}),
    ("expect_column_values_to_be_in_set", {"column": "s"}),
    ("expect_compound_columns_to_be_unique", {"column_list": []}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a"], "ignore_row_if": "sometimes"}),
    ("expect_multicolumn_sum_to_equal", {"column_list": ["a", "b"], "sum_total": "x"}),
    ("expect_table_row_count_to_equal", {}),
]
STRICTER_THAN_GE = [  # GE accepts these, then fails or misbehaves at run time
    ("expect_column_values_to_match_regex", {"column": "s", "regex": "("}),
    ("expect_column_value_lengths_to_equal", {"column": "s", "value": -1}),
    ("expect_column_values_to_be_between", {"column": "a", "min_value": 1, "strict_min": "yes"}),
    ("expect_table_row_count_to_equal", {"value": 1.5}),
    ("expect_column_mean_to_be_between", {"column": "a", "mostly": 0.5}),
    ("expect_column_values_to_not_be_null", {"column": "a", "row_condition": "s = 'x'", "condition_parser": "spark"}),  # pandas runs it
]
MISSING_COLUMNS = [
    ("expect_column_values_to_not_be_null", {"column": "nope"}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "nope"}),
    ("expect_multicolumn_sum_to_equal", {"column_list": ["a", "nope"], "sum_total": 1}),
    ("expect_column_values_to_be_increasing", {"column": "nope"}),
    ("expect_column_values_to_not_be_null", {"column": "a", "row_condition": 'nope == "x"', "condition_parser": "pandas"}),
    ("expect_column_values_to_not_be_null", {"column": "a", "row_condition": 'col("nope")=="x"', "condition_parser": "great_expectations"}),
]


@pytest.mark.parametrize(("expect", "kwargs"), GOOD + BAD_FOR_BOTH + STRICTER_THAN_GE + MISSING_COLUMNS)
def test_validation_agrees_with_great_expectations_or_is_stricter(expect, kwargs):
    rule = QualityRule(expect=expect, **kwargs)
    expected = (expect, kwargs) in GOOD
    assert _we_accept(rule) is expected
    if (expect, kwargs) not in STRICTER_THAN_GE + MISSING_COLUMNS:
        assert _ge_accepts(rule) is expected


def _break_rule(domains: Path, rule: dict) -> Path:
    path = domains / "orders" / "products" / "order_lines.yaml"
    document = yaml.safe_load(path.read_text())
    document["quality"].append(rule)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"expect": "expect_column_values_to_be_positive", "column": "amount"}, "not a Great Expectations expectation"),
        ({"expect": "expect_column_values_to_be_between", "name": "typo", "column": "amount", "min_vlaue": 0}, "unknown kwarg 'min_vlaue'"),
        ({"expect": "expect_column_values_to_be_in_set", "column": "colour", "value_set": ["red"]}, "column 'colour' is not a column"),
        (
            {"expect": "expect_column_values_to_be_in_set", "column": "status", "value_set": ["shipped"], "row_condition": 'segmnt == "b2b"', "condition_parser": "pandas"},
            "row_condition reads 'segmnt': not a column",
        ),
    ],
)
def test_a_bad_rule_fails_loading_naming_product_rule_and_field(domains_copy, rule, problem):
    _break_rule(domains_copy, rule)
    with pytest.raises(ContractError) as caught:
        load_products(load_domain(domains_copy / "orders"))
    index = len(yaml.safe_load((domains_copy / "orders/products/order_lines.yaml").read_text())["quality"]) - 1
    assert caught.value.product == "orders.order_lines"
    assert caught.value.field == f"quality[{index}].{rule['expect']}"
    assert problem in caught.value.problem


COVERING_RULES = [
    {"expect": "expect_column_values_to_not_be_null", "column": "a"},
    {"expect": "expect_column_values_to_be_null", "column": "s", "mostly": 0.1},
    {"expect": "expect_column_values_to_be_unique", "column": "a"},
    {"expect": "expect_column_values_to_be_in_set", "column": "s", "value_set": ["x"]},
    {"expect": "expect_column_values_to_not_be_in_set", "column": "s", "value_set": ["y"]},
    {"expect": "expect_column_values_to_be_between", "column": "a", "min_value": 0, "strict_min": True},
    {"expect": "expect_column_values_to_match_regex", "column": "s", "regex": "^x"},
    {"expect": "expect_column_values_to_not_match_regex", "column": "s", "regex": "y"},
    {"expect": "expect_column_value_lengths_to_be_between", "column": "s", "max_value": 3},
    {"expect": "expect_column_value_lengths_to_equal", "column": "s", "value": 1},
    {"expect": "expect_column_values_to_be_of_type", "column": "a", "type_": "BIGINT"},
    *[{"expect": f"expect_column_{stat}_to_be_between", "column": "a", "min_value": 0}
      for stat in ("min", "max", "mean", "median", "sum", "stdev", "unique_value_count", "proportion_of_unique_values")],
    *[{"expect": f"expect_column_distinct_values_to_{how}", "column": "s", "value_set": ["x"]} for how in ("be_in_set", "contain_set", "equal_set")],
    {"expect": "expect_table_row_count_to_be_between", "min_value": 1},
    {"expect": "expect_table_row_count_to_equal", "value": 1},
    {"expect": "expect_table_columns_to_match_ordered_list", "column_list": ["a", "b", "s"]},
    {"expect": "expect_table_columns_to_match_set", "column_set": ["a", "b", "s"]},
    {"expect": "expect_compound_columns_to_be_unique", "column_list": ["a", "b"]},
    {"expect": "expect_column_pair_values_a_to_be_greater_than_b", "column_A": "a", "column_B": "b"},
    {"expect": "expect_multicolumn_sum_to_equal", "column_list": ["a", "b"], "sum_total": 1},
]  # fmt: skip


def test_compiled_rules_load_without_importing_great_expectations(tmp_path):
    """Every compiled expectation validates at contract load; GE's 2 s import is never paid."""
    assert {rule["expect"] for rule in COVERING_RULES} == set(SIGNATURES)
    domain = tmp_path / "shop"
    (domain / "products").mkdir(parents=True)
    (domain / "domain.yaml").write_text("name: shop\nowner: team-shop\n")
    (domain / "products" / "items.yaml").write_text(yaml.safe_dump({
        "description": "Items.", "source": {"format": "csv", "path": "items.csv"},
        "columns": [{"name": "a", "type": "BIGINT"}, {"name": "b", "type": "BIGINT"}, {"name": "s", "type": "VARCHAR"}],
        "quality": [{**rule, "name": f"rule_{index}"} for index, rule in enumerate(COVERING_RULES)],
    }))  # fmt: skip
    script = (
        "import sys\n"
        "from platform_lib.contract import load_domain, load_products\n"
        f"(product,) = load_products(load_domain({str(domain)!r}))\n"
        "print(len(product.quality), 'great_expectations' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.split() == [str(len(COVERING_RULES)), "False"]
