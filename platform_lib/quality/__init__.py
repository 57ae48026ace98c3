"""Quality rules in Great Expectations' vocabulary, evaluated against a DuckDB relation.

`evaluate_rules` is the one entry point the asset checks call; which engine computes a
rule is an implementation detail recorded in each result's `engine`.
"""

from platform_lib.quality.results import RuleResult
from platform_lib.quality.engine import evaluate_rules, validate_rule

__all__ = ["RuleResult", "evaluate_rules", "validate_rule"]
