"""Headless Debian Chromium for the tests that look at the dashboard in a real browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (make test installs Debian's chromium)")
        pytest.skip("Chromium not installed: apt-get install chromium")
    return path


def launch(playwright: Any) -> Any:
    """Headless Debian Chromium, quiet: no sandbox (root in CI), no network of its own."""
    return playwright.chromium.launch(
        executable_path=chromium(),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
