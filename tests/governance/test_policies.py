"""Each global policy, broken on purpose in a copy of the sample mesh, with the exact line `mesh validate` prints."""

from __future__ import annotations

import pytest

from platform_lib.cli import main
from platform_lib.domain import domain_definitions
from platform_lib.governance import PolicyError, validate_mesh
from platform_lib.mesh import load_mesh
from tests.governance.policy_cases import CASES


def test_the_sample_mesh_follows_every_policy(capsys):
    assert validate_mesh(load_mesh()) == []
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_violation_is_one_line_naming_policy_product_file_and_fix(case, edit, domains_copy, capsys):
    edits, expected = CASES[case]
    for file, old, new in edits:
        edit(file, old, new)
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [expected]


def test_a_code_location_that_breaks_a_policy_fails_to_load_and_the_others_load(edit, domains_copy):
    edits, expected = CASES["cross-domain-access"]
    for file, old, new in edits:
        edit(file, old, new)
    with pytest.raises(PolicyError) as raised:
        domain_definitions(domains_copy / "marketing")
    assert str(raised.value).splitlines()[1:] == [expected]
    for healthy in ("customers", "orders"):
        assert domain_definitions(domains_copy / healthy).resolve_asset_graph().get_all_asset_keys()
