"""Real `mesh` processes for the fault tests: this worktree's code, the test's mesh, killable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKTREE = Path(__file__).resolve().parents[2]


def mesh_env(**extra: str) -> dict[str, str]:
    """The environment for a `mesh` subprocess: this worktree's platform_lib and the test's mesh."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return {**env, "PYTHONPATH": str(WORKTREE), **extra}


def mesh_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `mesh ARGS` as its own process group, so a test can SIGKILL it and all it started."""
    return subprocess.Popen(
        [sys.executable, "-m", "platform_lib.cli", *args],
        env=env or mesh_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
