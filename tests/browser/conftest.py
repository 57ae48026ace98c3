"""A real `dagster dev` over a real mesh, and Debian's Chromium driven by Selenium.

`dagster dev` ignores SIGTERM for a long time: it runs in its own process group,
which the fixture stops as a whole.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from platform_lib.storage import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
    "--disable-sync --no-first-run --window-size=2400,1400"
).split()
STARTUP_LIMIT_SECONDS = 300
LOCATIONS_QUERY = '{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}'


def ensure_chromium() -> None:
    """Install Debian's chromium and its driver if this machine lacks them (CI starts from a clean clone)."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _locations(url: str) -> dict[str, str]:
    request = urllib.request.Request(f"{url}/graphql", data=LOCATIONS_QUERY.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    return {e["name"]: e["loadStatus"] for e in entries}


@pytest.fixture
def dagster_dev(tmp_path) -> str:
    """`dagster dev` on a free port over this repository's workspace; yields its URL once every location loaded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "dagster-dev.log", "w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while True:
            assert process.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                if set(_locations(url).values()) == {"LOADED"}:
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster dev did not load its locations:\n{(tmp_path / 'dagster-dev.log').read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def artifacts() -> Path:
    """Where the screenshots go: kept by CI as test artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def browser():
    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    yield driver
    driver.quit()
