"""Fixtures for the governance tests: a domains copy that a test edits like a team would."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

Edit = Callable[[str, str, str], None]


@pytest.fixture
def edit(domains_copy: Path) -> Edit:
    """Replace `old` (which must occur exactly once) by `new` in a file of the domains copy."""

    def _edit(file: str, old: str, new: str) -> None:
        path = domains_copy / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return _edit
