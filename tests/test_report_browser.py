"""The HTML report in headless Chromium (Debian's package) driven by Playwright, on a real
Report (a copy-move forgery, tests/report_fixtures.py): nothing overflows a 390 px phone, zoom
reaches 100% of the full-resolution picture and beyond, the plain mode folds the technical
sections, a blank layer says so, the badge takes the dark colours, and nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")


from chromium import launched_browser, needs_chromium
from forenscope.report import render_html
from forenscope.report.html_assets import BADGE_COLOURS
from report_fixtures import real_reports

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    report, image = real_reports(tmp_path_factory.mktemp("clip-cache"))["tampered"]
    path = tmp_path_factory.mktemp("report") / "cm.html"
    path.write_text(render_html(report, image), encoding="utf-8")
    return path, {"width": image.width, "label": report.verdict.label}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_browser()


def _open(browser: Any, path: Path, width: int, scheme: str = "light") -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 844}, color_scheme=scheme)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url),
    )
    page.goto(path.as_uri())
    return page, problems


def test_nothing_overflows_a_phone(browser: Any, report_file: tuple[Path, dict[str, Any]]) -> None:
    page, problems = _open(browser, report_file[0], 390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tables = page.evaluate(
        """() => Array.from(document.querySelectorAll('table')).map(t => ({
             right: t.getBoundingClientRect().right,
             overflow: t.parentElement.scrollWidth - t.parentElement.clientWidth}))"""
    )
    assert len(tables) >= 4
    for t in tables:
        assert t["right"] <= 390 and t["overflow"] <= 0, t
    assert problems == []


def test_zoom_reaches_full_resolution_and_back(
    browser: Any, report_file: tuple[Path, dict[str, Any]]
) -> None:
    path, facts = report_file
    page, problems = _open(browser, path, 390)
    assert page.evaluate("document.querySelector('.stage img.base').naturalWidth") == facts["width"]
    fit = page.evaluate("document.querySelector('.stage').getBoundingClientRect().width")
    assert fit < facts["width"]  # the whole picture fits the phone at first
    page.click('button[data-zoom="1"]')
    stage = page.evaluate("document.querySelector('.stage').getBoundingClientRect().width")
    assert abs(stage - facts["width"]) <= 1  # 100%: one picture pixel per CSS pixel
    assert page.text_content("#zoom-level") == "100%"
    pannable = page.evaluate(
        "(v => v.scrollWidth > v.clientWidth)(document.querySelector('.viewport'))"
    )
    assert pannable
    page.click('button[data-zoom="in"]')
    page.click('button[data-zoom="in"]')
    assert page.evaluate("document.querySelector('.stage').classList.contains('pixels')")
    page.focus(".viewport")
    page.keyboard.press("0")
    back = page.evaluate("document.querySelector('.stage').getBoundingClientRect().width")
    assert abs(back - fit) <= 1
    assert problems == []


def test_plain_mode_folds_the_technical_detail(
    browser: Any, report_file: tuple[Path, dict[str, Any]]
) -> None:
    page, problems = _open(browser, report_file[0], 390)
    opened = "Array.from(document.querySelectorAll('details.tech')).map(d => d.open)"
    assert all(page.evaluate(opened))
    page.click("#mode-plain")
    assert not any(page.evaluate(opened))
    assert page.get_attribute("#mode-plain", "aria-pressed") == "true"
    assert page.is_visible(".plain .plain-verdict")
    page.click("#regions summary")  # the detail stays one click away
    assert page.evaluate("document.querySelector('#regions details').open")
    page.click("#mode-plain")
    assert all(page.evaluate(opened))
    assert problems == []


def test_blank_layer_says_its_expert_found_nothing(
    browser: Any, report_file: tuple[Path, dict[str, Any]]
) -> None:
    page, problems = _open(browser, report_file[0], 1280)
    assert page.is_hidden(".layer-note")  # the fused map found something
    blank = page.query_selector('input[name="layer"][data-nothing^="this expert"]')
    assert blank is not None, "the copy-move forgery leaves some expert's map blank"
    blank.check()
    assert page.is_visible(".layer-note")
    assert page.text_content(".layer-note").startswith("this expert found nothing")
    page.check('input[name="layer"][value="fused"]')
    assert page.is_hidden(".layer-note")
    assert page.is_visible(".pair") and page.is_visible(".box")
    page.uncheck("#show-pairs")
    assert page.is_hidden(".pair")
    assert problems == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_badge_takes_the_shared_colours(
    browser: Any, report_file: tuple[Path, dict[str, Any]], scheme: str
) -> None:
    path, facts = report_file
    page, _ = _open(browser, path, 390, scheme)
    colour = BADGE_COLOURS[scheme][facts["label"]]
    got = page.evaluate(
        "(s => [s.backgroundColor, s.color])(getComputedStyle(document.querySelector('.verdict')))"
    )
    assert got == [_rgb(colour.background), _rgb(colour.text)]


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
