"""The video report's timeline and scrubber in headless Chromium (Debian's package) driven by
Playwright: moving over the timeline or the slider shows that frame and its map, the map
toggles, nothing is fetched and no script fails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")

from playwright import sync_api

from chromium import ARGS, CHROMIUM, needs_chromium
from forenscope.video.analyze import analyze_video
from forenscope.video.report import write_video_report
from test_video import background, write_clip

pytestmark = needs_chromium


def test_the_timeline_and_the_slider_pick_the_frame_shown(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", [background(t) for t in range(40)])
    report = analyze_video(clip, budget=4, experts=["ela", "noise"])
    page_path = write_video_report(report, tmp_path / "out", formats=("html",))["html"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"error: {e}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
                else problems.append(r.url))  # fmt: skip
        page.goto(page_path.as_uri())

        def shown() -> list[str | None]:
            return [el.get_attribute("data-i") for el in page.locator(".slide.on").all()]

        assert shown() == ["0"]
        box = page.locator("svg.timeline").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] / 2)
        assert shown() == ["3"] and page.locator("#scrub").input_value() == "3"
        assert page.locator(".cap.on").inner_text().startswith("frame 35 ")
        page.locator("#scrub").fill("1")
        assert shown() == ["1"]
        fused = page.locator(".slide.on img.map")  # the frame's fused map, and its switch
        assert fused.count() == 1 and fused.is_visible()
        page.locator("#showmap").uncheck()
        assert not fused.is_visible()
        browser.close()
    assert problems == []
