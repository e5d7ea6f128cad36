"""The system Chromium that the browser tests drive through Playwright (CI installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("FORENSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no system chromium")


def launched_browser() -> Iterator[Any]:
    """One headless Chromium for a module's `browser` fixture; skips if Playwright cannot drive
    it (a user's clone), which CI's strict skips still catch."""
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as exc:  # a Chromium Playwright cannot drive: skip, do not fail
            pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
        yield browser
        browser.close()
