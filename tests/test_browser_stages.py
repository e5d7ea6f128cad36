"""The web UI's staged results, server-side cancel and plain-http re-upload, in real Chromium.

The server runs its analyses in a worker process (as `forenscope serve` does), so a large
photo takes seconds and cancel can stop it. Chromium maps the name lan.test to loopback: a page
from http://lan.test is not a secure context (no crypto.subtle), as on a LAN over plain http.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

from PIL import Image

from chromium import ARGS, CHROMIUM, needs_chromium
from forenscope.forgeries import example_photo
from test_browser_ui import serve

pytestmark = needs_chromium
EXPERTS = ["exif", "c2pa", "ela", "noise", "copy_move"]
LONG = 90_000  # ms


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("stages-ui") / "data"
    for url in serve(data, experts=EXPERTS, workers=1, isolation="process",
                     allowed_hosts=["127.0.0.1", "lan.test"]):  # fmt: skip
        yield url.removeprefix("http://"), data


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        args = [*ARGS, "--host-resolver-rules=MAP lan.test 127.0.0.1"]
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        except Exception as exc:
            pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, server: tuple[str, Path]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"http://{server[0]}/")
    yield pg
    context.close()
    assert not errors, errors


def photo(path: Path, scale: int, quality: int = 90) -> Path:
    rgb = np.tile(example_photo(), (scale, scale, 1))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    path.write_bytes(buf.getvalue())
    return path


def history_total(page: Any) -> int:
    return int(page.evaluate("fetch('/v1/analyses').then(r => r.json()).then(p => p.total)"))


def test_stages_show_as_they_arrive_then_the_analysis_opens(page: Any, tmp_path: Path) -> None:
    big = photo(tmp_path / "big.jpg", scale=3)  # 3072 x 2304
    page.set_input_files("#file", str(big))
    page.wait_for_selector("#stage-verdict.pending:has-text('Verdict pending')")
    page.wait_for_selector("#stage-maps.pending:has-text('Maps pending')")
    # Per-expert progress, with the verdict still pending and the metadata already shown.
    page.wait_for_selector("#stage-experts li", timeout=LONG)
    page.wait_for_selector("#staged-meta h4:has-text('EXIF')")
    text = page.text_content("#stage-experts-text")
    assert f"of {len(EXPERTS)} experts finished" in text
    assert f"of {len(EXPERTS)} experts finished" in page.text_content("#progress-text")
    page.wait_for_selector("#verdict-note:has-text('big.jpg')", timeout=LONG)
    assert page.is_hidden("#staged") and page.is_hidden("#progress")


def test_cancel_stops_the_analysis_on_the_server(
    page: Any, server: tuple[str, Path], tmp_path: Path
) -> None:
    slow = photo(tmp_path / "slow.jpg", scale=4, quality=85)  # 16 MP
    page.set_input_files("#file", str(slow))
    page.wait_for_selector("#stage-experts li", timeout=LONG)  # running in its worker
    job = page.get_attribute("#progress", "data-job")
    page.click("#cancel")
    page.wait_for_selector("#status:has-text('the server stopped its analysis')", timeout=10_000)
    status = page.evaluate(f"fetch('/v1/jobs/{job}').then(r => r.json())")
    assert status["status"] == "cancelled" and status["items"][0]["status"] == "cancelled"
    assert list((server[1] / "staging").iterdir()) == []  # no upload left behind
    assert page.is_hidden("#progress") and page.is_hidden("#staged")
    # The slot is free again: the next upload runs to its result.
    after = photo(tmp_path / "after.jpg", scale=1, quality=70)
    page.set_input_files("#file", str(after))
    page.wait_for_selector("#verdict-note:has-text('after.jpg')", timeout=LONG)


def test_a_reupload_over_plain_http_opens_the_existing_entry(
    browser: Any, server: tuple[str, Path], tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    port = server[0].rsplit(":", 1)[1]
    page.goto(f"http://lan.test:{port}/")
    assert page.evaluate("window.isSecureContext") is False
    assert page.evaluate("!!(window.crypto && crypto.subtle)") is False
    image = photo(tmp_path / "lan.jpg", scale=1, quality=75)
    page.set_input_files("#file", str(image))
    page.wait_for_selector("#verdict-note:has-text('lan.jpg')", timeout=LONG)
    first = page.evaluate("location.hash").split("/")[2].split("?")[0]
    total = history_total(page)
    page.goto(f"http://lan.test:{port}/")  # a fresh page, as a colleague would
    page.set_input_files("#file", str(image))
    page.wait_for_selector("#status:has-text('Already analysed')", timeout=LONG)
    page.wait_for_selector("#verdict-note:has-text('lan.jpg')")
    assert page.evaluate("location.hash").startswith("#/a/" + first)
    assert history_total(page) == total
    context.close()


def test_the_fused_map_is_drawn_while_the_item_runs(page: Any, tmp_path: Path) -> None:
    big = photo(tmp_path / "maps.jpg", scale=4, quality=85)  # 4096 x 3072: many seconds
    page.set_input_files("#file", str(big))
    # The fused map, fetched from the running item, lies over the picture before the stored
    # analysis (the full viewer) opens.
    page.wait_for_function(
        """() => { const m = document.getElementById('staged-layer');
                   return !m.hidden && m.dataset.map === 'fused' && m.naturalWidth > 0; }""",
        timeout=LONG,
    )
    size = page.evaluate("[$('staged-layer').naturalWidth, $('staged-layer').naturalHeight]")
    assert size == [800, 600]
    assert page.is_hidden("#result") and page.is_visible("#staged")
    assert page.get_attribute("#staged-layer", "src").startswith("blob:")
    names = page.eval_on_selector_all("#staged-maps button", "bs => bs.map(b => b.dataset.map)")
    assert names[0] == "fused"
    assert page.get_attribute("#staged-maps button[data-map=fused]", "aria-pressed") == "true"
    assert "Maps drawn:" in page.text_content("#stage-maps")
    # Then the stored analysis takes over, opening on the same (fused) map.
    page.wait_for_selector("#verdict-note:has-text('maps.jpg')", timeout=LONG)
    page.wait_for_selector("#layer-img[data-layer=fused]", timeout=LONG)
    assert page.is_hidden("#staged") and page.is_hidden("#staged-layer")
    assert page.input_value("#layer") == "fused"
