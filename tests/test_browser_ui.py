"""The web UI in headless Chromium (Debian's package) driven by Playwright.

Uploads an image, waits for the verdict, toggles an overlay, opens a past analysis, and checks
screenshots are non-blank and change when the overlay is shown. Skips when Playwright or the
system Chromium is missing. FORENSCOPE_UI_SCREENSHOT=path saves the README screenshot there.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

import uvicorn
from PIL import Image
from playwright import sync_api

from forenscope.forgeries import Box, example_photo, make_jpeg_region
from forenscope.service import Settings, create_app

CHROMIUM = os.environ.get("FORENSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no system chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=[None])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path / "data", analyze_rate_per_min=0, read_rate_per_s=0,
        token=request.param,
    )  # fmt: skip
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture()
def page(server: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as exc:  # a Chromium Playwright cannot drive: skip, do not fail
            pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server + "/")
        yield pg
        browser.close()
        assert not errors, errors


def write_images(folder: Path) -> tuple[Path, Path]:
    photo = example_photo()[::2, ::2].copy()  # 512x384 keeps the test fast
    # A region re-compressed at JPEG quality 55: invisible to the eye, visible to the experts.
    forged = make_jpeg_region(photo, Box(300, 90, 140, 120))
    first, second = folder / "edited.jpg", folder / "original.png"
    first.write_bytes(forged.data)
    Image.fromarray(photo).save(second)
    return first, second


def shot(locator: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.int16)


def save_screenshot(page: Any, target: Path) -> None:
    """The README picture: a 256-colour PNG keeps it small."""
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def test_upload_verdict_overlay_and_history(page: Any, tmp_path: Path) -> None:
    first, second = write_images(tmp_path)
    page.set_input_files("#file", str(first))
    page.wait_for_selector("#verdict:has-text('%')", timeout=30_000)
    verdict = page.text_content("#verdict")
    assert any(w in verdict for w in ("Real photo", "AI-generated", "Tampered"))
    assert "edited.jpg" in page.text_content("#verdict-note")
    assert page.locator("#evidence li").count() >= 1
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0")

    stage = page.locator(".stage")
    plain = shot(stage)
    assert plain.std() > 20, "the image area is blank"

    page.click("#overlay-buttons button[data-overlay='fused']")
    page.wait_for_selector("#overlay[data-overlay='fused']:not([hidden])")
    page.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
    assert page.get_attribute("button[data-overlay='fused']", "aria-pressed") == "true"
    with_overlay = shot(stage)
    assert with_overlay.shape == plain.shape
    changed = (np.abs(with_overlay - plain).sum(axis=2) > 40).mean()
    assert changed > 0.01, f"the overlay changed only {changed:.2%} of the picture"
    if target := os.environ.get("FORENSCOPE_UI_SCREENSHOT"):
        save_screenshot(page, Path(target))

    page.click("#overlay-buttons button[data-overlay='none']")
    page.wait_for_selector("#overlay", state="hidden")
    assert np.abs(shot(stage) - plain).mean() < 1.0

    # A second analysis, then back to the first one from the history list.
    page.set_input_files("#file", str(second))
    page.wait_for_selector("#verdict-note:has-text('original.png')", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#history li').length === 2")
    page.click("#history li:nth-child(2)")
    page.wait_for_selector("#verdict-note:has-text('edited.jpg')")
    assert page.locator("#history li.active").count() == 1
    assert "edited.jpg" in page.text_content("#history li.active")


def test_refused_upload_shows_an_error(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"this is plain text pretending to be a JPEG")
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#status.error", timeout=10_000)
    assert "leading bytes" in page.text_content("#status")
    assert page.is_hidden("#result")


@pytest.mark.parametrize("server", ["browser-test-token"], indirect=True)
def test_token_prompt_when_the_server_requires_one(page: Any, tmp_path: Path) -> None:
    page.wait_for_selector("#token-form:not([hidden])")  # the history call got 401
    assert page.locator("#history li").count() == 0
    page.fill("#token", "browser-test-token")
    page.click("#token-form button")
    page.wait_for_selector("#token-form", state="hidden")
    first, _ = write_images(tmp_path)
    page.set_input_files("#file", str(first))
    page.wait_for_selector("#verdict:has-text('%')", timeout=30_000)
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
    page.wait_for_function("document.querySelectorAll('#history li').length === 1")
