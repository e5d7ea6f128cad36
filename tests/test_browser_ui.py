"""The web UI in headless Chromium (Debian's package) driven by Playwright.

One server (fast experts) and one browser per module; each test gets a fresh page. The tests
follow issue 13: the viewer (zoom, loupe, compare, legend, numbered regions and copy-move
pairs, empty layers), the analyst's tools (ELA, noise, gradient, JPEG and metadata panels),
batch and flow (jobs, progress, cancel, no upload race, permalinks, downloads, history search
and delete, re-upload), and accessibility (axe-core in light and dark mode, keyboard, alt text,
the report's badge colours, 390 px). FORENSCOPE_UI_SCREENSHOT=dir saves README screenshots.
"""

from __future__ import annotations

import base64
import io
import os
import re
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

from chromium import launched_browser, needs_chromium
from forenscope.forgeries import Box, example_photo, make_copy_move, make_jpeg_region, make_splice
from forenscope.report.html_assets import BADGE_COLOURS
from forenscope.service import Settings, create_app
from provenance_fixtures import exif_with_thumbnail, jpeg_bytes

AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"
STATIC = Path(__file__).parents[1] / "src" / "forenscope" / "service" / "static"
FAST_EXPERTS = ["ela", "noise", "copy_move", "exif", "jpeg_artifacts", "c2pa"]
LONG = 60_000  # ms: an analysis on a busy 2-core CI machine

pytestmark = needs_chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: Path, token: str | None = None, **extra: Any) -> Iterator[str]:
    """A server on a thread; `extra` settings override the fast experts and the like."""
    settings = Settings(
        data_dir=data_dir, analyze_rate_per_min=0, read_rate_per_s=0, token=token,
        **{"experts": FAST_EXPERTS, **extra},
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("ui") / "data")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_browser()


def open_page(browser: Any, url: str, width: int = 1280, height: int = 860, **kw: Any) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  accept_downloads=True, **kw)  # fmt: skip
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(url)
    return pg


@pytest.fixture()
def page(browser: Any, server: str) -> Iterator[Any]:
    pg = open_page(browser, server + "/")
    yield pg
    errors = pg.errors
    pg.context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test files: a copy-move forgery, a region re-saved at q55, a clean photo, and a JPEG with
    EXIF Software and a thumbnail that shows another picture."""
    folder = tmp_path_factory.mktemp("images")
    photo = example_photo()[::2, ::2].copy()  # 512x384 keeps the tests fast
    out = {
        "copy": make_copy_move(photo, Box(60, 220, 90, 70), (330, 60)).data,
        "region": make_jpeg_region(photo, Box(300, 90, 140, 120)).data,
        # A 4:3 EXIF thumbnail of another picture, as after an edit that kept the camera's.
        "thumb": jpeg_bytes(photo, exif_raw=exif_with_thumbnail((160, 120)), quality=85),
    }
    paths = {name: folder / f"{name}.jpg" for name in out}
    for name, data in out.items():
        paths[name].write_bytes(data)
    Image.fromarray(photo[::-1].copy()).save(folder / "clean.png")
    paths["clean"] = folder / "clean.png"
    return paths


def analyze(page: Any, path: Path) -> None:
    page.set_input_files("#file", str(path))
    page.wait_for_selector(f"#verdict-note:has-text('{path.name}')", timeout=LONG)
    page.wait_for_function("() => document.getElementById('photo').naturalWidth > 0")


def shot(locator: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.int16)


def screenshot_to(page: Any, name: str) -> None:
    """README pictures when FORENSCOPE_UI_SCREENSHOT names a folder (256-colour PNGs)."""
    if folder := os.environ.get("FORENSCOPE_UI_SCREENSHOT"):
        image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        target = Path(folder) / name
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def zoom(page: Any) -> int:
    return int(page.get_attribute("#viewer", "data-zoom"))


# --- 1. the viewer -------------------------------------------------------------------------------


def test_viewer_fused_map_legend_numbered_regions_and_copy_move_pairs(
    page: Any, images: dict[str, Path]
) -> None:
    analyze(page, images["copy"])
    # The fused map is on by default, with an opacity slider and a colour legend.
    assert page.input_value("#layer") == "fused"
    page.wait_for_selector("#layer-img[data-layer='fused']:not([hidden])")
    assert page.eval_on_selector("#layer-img", "e => e.style.opacity") == "0.7"
    stage = page.locator("#pane-b")
    before = shot(stage)
    page.fill("#opacity", "0")
    assert page.eval_on_selector("#layer-img", "e => e.style.opacity") == "0"
    assert np.abs(shot(stage) - before).mean() > 0.5, "opacity did not change the picture"
    assert page.locator("#legend .bar").count() == 1
    assert "most suspicious" in page.text_content("#legend")
    # Regions drawn and numbered as in the report; the copy-move pair joined and numbered.
    report = page.evaluate("fetch(location.hash.replace('#/a/', '/v1/analyses/').split('?')[0])"
                           ".then(r => r.json())")  # fmt: skip
    ids = [str(r["id"]) for r in report["report"]["regions"]]
    assert ids and page.locator("#marks g.region").count() == len(ids)
    assert page.locator("#marks g.region text").all_text_contents() == ids
    assert page.locator("#marks g.pair line").count() == 2  # halo + line
    assert page.locator("#marks g.pair text").all_text_contents() == ["1a", "1b"]
    assert "Pair 1" in page.text_content("#pairs")
    line = page.locator("#marks g.pair line:not(.halo)")
    assert float(line.get_attribute("x1")) != float(line.get_attribute("x2"))
    page.uncheck("#show-boxes")
    assert page.is_hidden("#marks")
    page.check("#show-boxes")
    page.fill("#opacity", "70")
    screenshot_to(page, "ui-viewer.png")


def test_viewer_zoom_pan_loupe_and_full_resolution(page: Any, images: dict[str, Path]) -> None:
    analyze(page, images["region"])
    fit = zoom(page)  # a 512 px image fits the 1280 px page at a bit over 100%
    page.click("#zoom-100")
    page.wait_for_selector("#viewer[data-full='1']")
    assert zoom(page) == 100 and page.text_content("#zoom-level") == "100%"
    assert page.eval_on_selector("#photo", "e => e.naturalWidth") == 512  # the full image
    assert "/inspect/full.jpg" not in page.get_attribute("#photo", "src")  # a blob, not a URL
    page.click("#zoom-in")
    assert zoom(page) == 150
    page.focus("#viewer")
    page.keyboard.press("+")
    assert zoom(page) > 150
    left = page.eval_on_selector("#pane-b .stage", "e => e.style.left")
    page.keyboard.press("ArrowRight")
    assert page.eval_on_selector("#pane-b .stage", "e => e.style.left") != left
    box = page.locator("#pane-b").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 30, box["y"] + 60, steps=3)
    page.mouse.up()
    assert page.eval_on_selector("#pane-b .stage", "e => e.style.left") != left
    for _ in range(12):
        page.click("#zoom-in")
    assert zoom(page) == 800  # the cap: 8 screen pixels per image pixel
    page.focus("#viewer")
    page.keyboard.press("0")
    assert zoom(page) == fit
    # The loupe magnifies the full-resolution image under the pointer, three times the view.
    page.click("#loupe-toggle")
    assert page.get_attribute("#loupe-toggle", "aria-pressed") == "true"
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    page.wait_for_selector("#loupe:not([hidden])")
    assert "blob:" in page.eval_on_selector("#loupe", "e => e.style.backgroundImage")
    assert abs(int(page.get_attribute("#loupe", "data-scale")) - max(100, 3 * fit)) <= 3


def test_compare_side_by_side_and_swipe_against_any_layer(
    page: Any, images: dict[str, Path]
) -> None:
    analyze(page, images["region"])
    page.select_option("#layer", "ela")
    page.wait_for_selector("#layer-img[data-layer='ela']:not([hidden])")
    page.select_option("#mode", "side")
    a, b = page.locator("#pane-a").bounding_box(), page.locator("#pane-b").bounding_box()
    assert a["width"] > 100 and a["x"] + a["width"] <= b["x"] + 1, (a, b)  # side by side
    page.select_option("#mode", "swipe")
    a, b = page.locator("#pane-a").bounding_box(), page.locator("#pane-b").bounding_box()
    assert abs(a["x"] - b["x"]) < 1 and abs(a["y"] - b["y"]) < 1  # stacked
    assert page.eval_on_selector("#pane-a", "e => e.style.clipPath") == "inset(0px 50% 0px 0px)"
    page.fill("#swipe", "20")
    assert page.eval_on_selector("#pane-a", "e => e.style.clipPath") == "inset(0px 80% 0px 0px)"
    left = shot(page.locator("#pane-b"))
    page.fill("#swipe", "100")
    assert np.abs(shot(page.locator("#pane-b")) - left).mean() > 1.0  # the swipe moved
    assert "mode=swipe" in page.evaluate("location.hash")


def test_an_empty_layer_says_the_expert_found_nothing(page: Any, images: dict[str, Path]) -> None:
    analyze(page, images["clean"])
    options = page.eval_on_selector_all("#layer option", "os => os.map(o => o.value)")
    assert "copy_move" in options  # a map of zeros on an untouched photo
    page.select_option("#layer", "copy_move")
    page.wait_for_selector("#layer-note.empty")
    assert "This expert found nothing" in page.text_content("#layer-note")
    page.select_option("#layer", "ela")
    page.wait_for_selector("#layer-img[data-layer='ela']")
    assert "found nothing" not in page.text_content("#layer-note")


# --- 2. the analyst's tools ----------------------------------------------------------------------


def test_ela_at_a_chosen_quality_noise_and_gradient_layers(
    page: Any, images: dict[str, Path]
) -> None:
    analyze(page, images["region"])
    page.select_option("#layer", "ela")
    page.wait_for_selector("#layer-note:has-text('ELA at JPEG quality 90')")
    first = page.get_attribute("#layer-img", "src")
    page.eval_on_selector(
        "#ela-quality", "e => { e.value = 70; e.dispatchEvent(new Event('input'));"
        " e.dispatchEvent(new Event('change')); }",
    )  # fmt: skip
    page.wait_for_selector("#layer-note:has-text('ELA at JPEG quality 70')")
    assert page.get_attribute("#layer-img", "src") != first
    assert page.text_content("#ela-quality-out") == "70"
    assert "q=70" in page.evaluate("location.hash")
    assert "bright" in page.text_content("#legend")
    for name, words in (("noise", "noise residual"), ("gradient", "luminance gradient")):
        page.select_option("#layer", name)
        page.wait_for_selector(f"#layer-note:has-text('{words}')")
        page.wait_for_function(
            f"() => document.getElementById('layer-img').dataset.layer === '{name}' && "
            "document.getElementById('layer-img').naturalWidth === 512"
        )


def test_metadata_and_jpeg_panels(page: Any, images: dict[str, Path]) -> None:
    analyze(page, images["thumb"])
    page.click("#meta-box summary")
    page.wait_for_selector("#meta h4:has-text('EXIF')")
    text = page.text_content("#meta")
    for words in ("C2PA", "No C2PA manifest", "XMP", "IPTC", "PNG text chunks", "ICC"):
        assert words in text
    page.wait_for_selector("#meta .thumbs img")
    assert page.eval_on_selector("#meta .thumbs img", "e => e.naturalWidth") == 160
    assert page.locator("#meta .flag").count() == 1
    assert "Differs" in page.text_content("#meta .flag")
    page.click("#jpeg-box summary")
    page.wait_for_selector("#jpeg table.q8")
    assert "Estimated JPEG quality: 85" in page.text_content("#jpeg")
    assert page.locator("#jpeg table.q8").count() == 2
    assert page.locator("#jpeg table.q8 td").count() == 128
    label = page.get_attribute("#jpeg svg.ghost", "aria-label")
    assert "dip at quality 85" in label, label


# --- 3. batch and flow ---------------------------------------------------------------------------


class Recorder:
    """Frames of the README's workflow GIF when FORENSCOPE_UI_SCREENSHOT names a folder."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.frames: list[Image.Image] = []
        self.on = bool(os.environ.get("FORENSCOPE_UI_SCREENSHOT"))

    def frame(self) -> None:
        if self.on:
            image = Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")
            image.thumbnail((640, 640))
            self.frames.append(image.quantize(colors=96, method=Image.Quantize.MEDIANCUT))

    def save(self, name: str) -> None:
        if self.on and self.frames:
            target = Path(os.environ["FORENSCOPE_UI_SCREENSHOT"]) / name
            first, *rest = self.frames
            first.save(target, save_all=True, append_images=rest, duration=1400, loop=0,
                       optimize=True)  # fmt: skip


def test_workflow_drop_three_files_open_the_splice_zoom_and_swipe_against_ela(
    page: Any, images: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 13's workflow: multi-file drop through the jobs API with per-file status, then the
    splice opened, zoomed on its region and swiped against the ELA layer."""
    photo = example_photo()[::2, ::2].copy()
    donor = example_photo()[::-2, ::-2].copy()
    files = {
        "splice.jpg": make_splice(photo, donor, Box(300, 90, 140, 120), donor_noise=20.0).data,
        "batch-a.jpg": jpeg_bytes(photo[:256, :384].copy(), quality=88),
        "batch-b.jpg": jpeg_bytes(donor[:256, :384].copy(), quality=88),
    }
    recorder = Recorder(page)
    # A real drop event with three files, as a person's drag from a file manager sends it.
    payload = [{"name": n, "b64": base64.b64encode(d).decode()} for n, d in files.items()]
    page.evaluate(
        """files => {
          const dt = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
          }
          const drop = new DragEvent("drop", { dataTransfer: dt });
          document.getElementById("drop").dispatchEvent(drop);
        }""",
        payload,
    )
    page.wait_for_selector("#batch:not([hidden])")
    assert page.locator("#batch li").count() == 3
    assert page.locator("#batch li progress").count() == 3
    page.wait_for_selector("#progress:not([hidden])")
    recorder.frame()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#batch li')]"
        ".every(li => li.dataset.status === 'done')",
        timeout=3 * LONG,
    )
    assert page.locator("#batch li a").count() == 3
    assert "3 analysed" in page.text_content("#status")
    page.wait_for_selector("#progress", state="hidden")
    recorder.frame()
    page.click("#batch li:nth-child(1) a")  # the splice
    page.wait_for_selector("#verdict-note:has-text('splice.jpg')")
    page.wait_for_selector("#layer-img:not([hidden])")
    page.evaluate("() => document.getElementById('result').scrollIntoView()")
    recorder.frame()
    # Zoom on the spliced area: centre the view on it, then 200%.
    page.evaluate("() => { state.view.cx = 370 / 512; state.view.cy = 150 / 384; applyView(); }")
    page.click("#zoom-100")
    page.click("#zoom-in")
    page.wait_for_selector("#viewer[data-full='1']")
    assert 140 <= zoom(page) <= 160
    recorder.frame()
    page.select_option("#layer", "ela")
    page.wait_for_selector("#layer-img[data-layer='ela']:not([hidden])")
    page.select_option("#mode", "swipe")
    for position in ("70", "40", "15"):
        page.fill("#swipe", position)
        recorder.frame()
    assert page.eval_on_selector("#pane-a", "e => e.style.clipPath") == "inset(0px 85% 0px 0px)"
    recorder.save("ui-workflow.gif")


DELAY_SLOW = """
(() => {
  const real = window.fetch;
  window.fetch = (url, opts) => {
    const body = opts && opts.body;
    const file = body instanceof FormData ? body.get("files") : null;
    if (!file || !file.name.startsWith("slow") || url !== "/v1/jobs") return real(url, opts);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve(real(url, opts)), 2500);
      if (opts.signal) opts.signal.addEventListener("abort", () => {
        clearTimeout(t); reject(new DOMException("aborted", "AbortError"));
      });
    });
  };
})();
"""


def test_no_race_elapsed_time_and_cancel(
    browser: Any, server: str, images: dict[str, Path], tmp_path: Path
) -> None:
    page = open_page(browser, "about:blank")
    page.add_init_script(DELAY_SLOW)
    page.goto(server + "/")
    slow, slow2 = tmp_path / "slow.jpg", tmp_path / "slow-cancelled.jpg"
    rgb = example_photo()[:200, :300].copy()
    Image.fromarray(rgb).save(slow, quality=85)  # bytes never analysed before
    Image.fromarray(rgb).save(slow2, quality=80)
    fast = tmp_path / "fast.png"
    Image.fromarray(rgb[::-1].copy()).save(fast)
    # A slow upload, then a fast one: the slow result must not replace the fast one later.
    page.set_input_files("#file", str(slow))
    page.wait_for_selector("#progress:not([hidden])")
    assert re.search(r"\d+ s elapsed", page.text_content("#elapsed"))
    # Staged first view: the picture and its metadata while the analysis runs.
    page.wait_for_selector("#staged:not([hidden]) #staged-meta h4:has-text('C2PA')")
    assert page.eval_on_selector("#staged-img", "e => e.naturalWidth") == 300
    assert "No C2PA manifest" in page.text_content("#staged-meta")
    page.set_input_files("#file", str(fast))
    page.wait_for_selector("#verdict-note:has-text('fast.png')", timeout=LONG)
    page.wait_for_selector("#status:has-text('slow.jpg finished in the background')", timeout=LONG)
    assert page.is_hidden("#staged")  # the fast upload's staged view went with its result
    assert "fast.png" in page.text_content("#verdict-note")
    # Cancel: the request is aborted and the view says so.
    page.set_input_files("#file", str(slow2))
    page.wait_for_selector("#progress:not([hidden])")
    page.click("#cancel")
    page.wait_for_selector("#status:has-text('Cancelled slow-cancelled.jpg')")
    assert page.is_hidden("#progress")
    assert "fast.png" in page.text_content("#verdict-note")
    errors = page.errors
    page.context.close()
    assert not errors, errors


def test_permalink_refresh_download_names_and_reupload(
    page: Any, server: str, images: dict[str, Path]
) -> None:
    analyze(page, images["copy"])
    analysis_id = page.evaluate("location.hash").split("/")[2].split("?")[0]
    assert re.fullmatch(r"[0-9a-f]{32}", analysis_id)
    page.select_option("#layer", "noise")
    page.wait_for_selector("#layer-img[data-layer='noise']")
    page.select_option("#mode", "side")
    page.reload()
    page.wait_for_selector("#verdict-note:has-text('copy.jpg')")
    assert page.input_value("#layer") == "noise" and page.input_value("#mode") == "side"
    page.wait_for_selector("#layer-img[data-layer='noise']")
    with page.expect_download() as info:
        page.click("#dl-json")
    assert info.value.suggested_filename == "copy.forenscope.json"
    with page.expect_download() as info:
        page.click("#dl-html")
    assert info.value.suggested_filename == "copy.forenscope.html"
    count = page.evaluate("fetch('/v1/analyses').then(r => r.json()).then(p => p.total)")
    page.goto("about:blank")
    page.goto(f"{server}/#/a/{analysis_id}")  # the permalink in a fresh load
    page.wait_for_selector("#verdict-note:has-text('copy.jpg')")
    page.set_input_files("#file", str(images["copy"]))  # the same bytes again
    page.wait_for_selector("#status:has-text('Already analysed')")
    assert page.evaluate("location.hash").startswith("#/a/" + analysis_id)
    assert page.evaluate("fetch('/v1/analyses').then(r => r.json()).then(p => p.total)") == count


def test_history_by_keyboard_search_and_delete(page: Any, images: dict[str, Path]) -> None:
    analyze(page, images["clean"])
    deleted_id = page.evaluate("location.hash").split("/")[2].split("?")[0]
    page.wait_for_function("() => document.querySelectorAll('#history li a').length >= 1")
    page.focus("#history-search")
    page.keyboard.type("clean")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#history li a')]"
        ".every(a => a.textContent.includes('clean'))"
    )
    page.keyboard.press("Tab")  # to the first matching entry
    assert "clean.png" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector("#history li.active")
    page.keyboard.press("Tab")  # to its delete button
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete clean.png"
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:has-text('Deleted clean.png')")
    assert page.is_hidden("#result")
    status = page.evaluate(f"fetch('/v1/analyses/{deleted_id}').then(r => r.status)")
    assert status == 404
    page.fill("#history-search", "")
    page.wait_for_function(
        f"() => ![...document.querySelectorAll('#history li')].some(li => li.dataset.id === "
        f"'{deleted_id}')"
    )


def test_inconclusive_verdict_shows_needs_review_and_leaning(
    page: Any, images: dict[str, Path]
) -> None:
    def inconclusive(route: Any) -> None:
        body = route.fetch().json()
        body["report"]["verdict"].update(label="inconclusive", leaning="tampered",
                                         probability=0.62)  # fmt: skip
        route.fulfill(json=body)

    page.route(re.compile(r".*/v1/analyses/[0-9a-f]{32}$"), inconclusive)
    analyze(page, images["region"])
    page.reload()
    page.wait_for_selector("#verdict:has-text('Inconclusive (needs review)')")
    assert (
        page.text_content("#verdict") == "Inconclusive (needs review): leaning tampered \u00b7 62%"
    )
    assert "label-inconclusive" in page.get_attribute("#verdict", "class")
    assert "Inconclusive (needs review)" in page.get_attribute("#photo", "alt")


# --- 5. accessibility and layout -----------------------------------------------------------------


def css_badges(css: str, scheme: str) -> dict[str, tuple[str, str]]:
    """{label: (background, text)} from the UI's --badge-* variables of one colour scheme."""
    start = css.index(':root[data-theme="dark"]') if scheme == "dark" else css.index(":root {")
    block = css[start : css.index("}", start)]
    fg = dict(re.findall(r"--badge-([a-z_]+)-fg: (#[0-9a-f]{6})", block))
    bg = dict(re.findall(r"--badge-([a-z_]+): (#[0-9a-f]{6})", block))
    return {label: (bg[label], fg[label]) for label in fg}


def test_badge_colours_are_the_html_reports() -> None:
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    for scheme, colours in BADGE_COLOURS.items():
        expected = {label: (c.background, c.text) for label, c in colours.items()}
        assert css_badges(css, scheme) == expected, scheme


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))


def axe_serious(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, { runOnly: { type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_violation_in_light_and_dark_mode(
    browser: Any, server: str, images: dict[str, Path]
) -> None:
    page = open_page(browser, server + "/", bypass_csp=True)  # to inject axe-core
    analyze(page, images["thumb"])
    page.click("#meta-box summary")
    page.wait_for_selector("#meta .thumbs img")
    page.click("#jpeg-box summary")
    page.wait_for_selector("#jpeg svg.ghost")
    page.wait_for_selector("#layer-img[data-layer='fused']:not([hidden])")
    assert axe_serious(page) == []
    page.click("#theme")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert axe_serious(page) == []
    page.context.close()


def test_keyboard_alt_text_and_labels(page: Any, images: dict[str, Path]) -> None:
    page.wait_for_load_state("networkidle")  # init() may still move the focus after load
    unlabeled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id)"
    )
    assert unlabeled == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the analysis"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "drop"
    page.focus("#drop")
    # Space and Enter open the chooser through the file input's click(); counted rather than
    # awaited, because headless Chromium drops a real chooser at random on a loaded machine.
    page.evaluate(
        "() => { const f = document.getElementById('file'); window.opened = 0;"
        " f.click = () => { window.opened += 1; }; }"
    )
    page.keyboard.press(" ")
    page.keyboard.press("Enter")
    assert page.evaluate("window.opened") == 2
    assert page.evaluate("document.getElementById('file').multiple")
    analyze(page, images["region"])
    verdict = page.text_content("#verdict")
    assert verdict in page.get_attribute("#photo", "alt")
    label = page.get_attribute("#verdict", "data-label")
    for scheme in ("light", "dark"):  # the report's badge in both schemes
        if scheme == "dark":
            page.click("#theme")
        style = page.eval_on_selector(
            "#verdict", "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
        )
        badge = BADGE_COLOURS[scheme][label]
        assert style == [rgb(badge.background), rgb(badge.text)], (scheme, style)


def test_layout_at_390_px(browser: Any, server: str, images: dict[str, Path]) -> None:
    page = open_page(browser, server + "/", width=390, height=844)
    analyze(page, images["copy"])
    screenshot_to(page, "ui-390.png")
    page.click("#meta-box summary")
    page.wait_for_selector("#meta h4")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390, f"the page is {overflow} px wide at a 390 px viewport"
    for selector in ("#verdict", "#pane-b", "#layer", "#zoom-100", "#history-search", "#dl-json"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 391, selector
    assert page.locator("#pane-b").bounding_box()["width"] > 300
    errors = page.errors
    page.context.close()
    assert not errors, errors


@pytest.mark.parametrize("token", ["browser-test-token"])
def test_token_prompt_when_the_server_requires_one(
    browser: Any, tmp_path: Path, images: dict[str, Path], token: str
) -> None:
    for url in serve(tmp_path / "data", token=token):
        page = open_page(browser, url + "/")
        page.wait_for_selector("#token-form:not([hidden])")  # the history call got 401
        assert page.locator("#history li a").count() == 0
        page.fill("#token", token)
        page.click("#token-form button")
        page.wait_for_selector("#token-form", state="hidden")
        analyze(page, images["region"])
        page.select_option("#layer", "ela")  # the inspect routes send the token too
        page.wait_for_selector("#layer-img[data-layer='ela']:not([hidden])")
        page.wait_for_function("() => document.querySelectorAll('#history li a').length === 1")
        page.context.close()


def test_refused_upload_shows_an_error(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"this is plain text pretending to be a JPEG")
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#status.error", timeout=10_000)
    assert "leading bytes" in page.text_content("#status")
    assert page.is_hidden("#result")
