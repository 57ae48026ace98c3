"""No name imported or assigned and never used, none used and never defined: ruff's pyflakes rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from platform_lib.storage import REPO_ROOT


def test_the_code_has_no_unused_or_undefined_names():
    ruff = Path(sys.executable).parent / "ruff"
    folders = ["platform_lib", "domains", "tests", "benchmarks"]
    run = subprocess.run([str(ruff), "check", "--no-cache", *folders], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
