"""The web UI on a video clip, in real Chromium: the clip card (its verdict, marked not
calibrated, its temporal evidence and the HTML timeline report in a frame) instead of the image
viewer, and the clip in the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

from chromium import needs_chromium
from test_browser_stages import LONG, browser, page, server
from video_fixtures import N, background, write_clip

pytestmark = needs_chromium
__all__ = ["browser", "page", "server"]  # the fixtures this module uses


def test_a_clip_opens_its_card_and_timeline_report(page: Any, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "pan.mp4", [background(t) for t in range(N)])
    page.set_input_files("#file", str(clip))
    page.wait_for_selector("#verdict-note:has-text('pan.mp4')", timeout=LONG)
    assert "not calibrated" in page.text_content("#verdict-note")
    assert page.is_visible("#clip") and page.is_hidden("#image-result")
    assert "160\u00d7120" in page.text_content("#clip-info")
    assert page.locator("#clip-evidence li").count() >= 1  # a finding, or 'No temporal finding'
    frame = page.frame_locator("#clip-report")
    frame.locator("svg.timeline").wait_for(timeout=10_000)
    href = page.get_attribute("#clip-report-link", "href")
    assert href is not None and href.endswith("/report.html")
    page.wait_for_selector("#history li a:has-text('pan.mp4')")
