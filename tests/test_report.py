"""Report renderers: JSON round trip, Markdown, one self-contained HTML file, sidecars, schema."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forenscope.fusion import attribute, fuse, localize
from forenscope.io.input import ImageInput
from forenscope.report import (
    json_schema_text,
    render_html,
    render_markdown,
    report_to_json,
    write_report,
)
from forenscope.report.explain import explain
from forenscope.report.overlays import (
    INFERNO_LUT,
    heatmap_rgba,
    mask_outline_rgba,
    overlay_png,
    png_bytes,
)
from forenscope.types import (
    ErrorInfo,
    Evidence,
    ExpertResult,
    ImageInfo,
    Report,
)

ROOT = Path(__file__).resolve().parents[1]
H, W = 90, 120
HOSTILE = "<script>alert(1)</script>"


def make_image() -> ImageInput:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, size=(H, W, 3), dtype=np.uint8)
    return ImageInput(rgb=rgb, data=b"fake bytes", format="JPEG", mode="RGB", path="/in/x<y>.jpg")


def make_report(image: ImageInput) -> Report:
    blob = np.full((H, W), 0.05, np.float32)
    blob[10:40, 15:55] = 0.95
    results = [
        ExpertResult(
            expert="copy_move",
            version="1",
            targets="tampered",
            score=0.92,
            evidence=[Evidence(kind="copy_move.match", summary="312 matched keypoint pairs")],
            heatmap=blob,
            has_heatmap=True,
        ),
        ExpertResult(
            expert="exif",
            version="1",
            targets="both",
            score=0.6,
            evidence=[Evidence(kind="exif.software", summary=f"EXIF Software = '{HOSTILE}'")],
        ),
        ExpertResult(
            expert="noise",
            version="1",
            targets="tampered",
            score=0.4,
            heatmap=np.random.default_rng(2).uniform(0, 0.3, (45, 60)).astype(np.float32),
            has_heatmap=True,
        ),
        ExpertResult(
            expert="c2pa_manifest", version="1", targets="both", abstain_reason=f"no {HOSTILE}"
        ),
    ]
    fused = fuse(results, height=H, width=W)
    assert fused.heatmap is not None
    mask, regions = localize(fused.heatmap, results=results)
    report = Report(
        forenscope_version="0.1.0",
        image=ImageInfo(
            path=image.path,
            sha256=image.sha256,
            format="JPEG",
            width=W,
            height=H,
            mode="RGB",
            bytes=len(image.data),
        ),
        verdict=fused.verdict,
        attribution=fused.attribution,
        regions=regions,
        experts=results,
        key_evidence=fused.key_evidence,
        fused_heatmap=fused.heatmap,
        fused_mask=mask,
        timings={"experts": 0.12, "total": 0.2},
        errors=[ErrorInfo(type="Warning", message=HOSTILE)],
    )
    return report.model_copy(update={"explanation": explain(report)})


@pytest.fixture
def image() -> ImageInput:
    return make_image()


@pytest.fixture
def report(image: ImageInput) -> Report:
    return make_report(image)


def test_pipeline_pieces_agree(report: Report) -> None:
    assert report.verdict.label == "tampered"
    assert len(report.regions) == 1
    assert report.regions[0].relative_position == "upper-left"
    assert report.regions[0].experts == ["copy_move"]


def test_json_round_trip(report: Report) -> None:
    text = report_to_json(report)
    data = json.loads(text)
    assert "fused_heatmap" not in data and "heatmap" not in data["experts"][0]
    assert list(data)[:5] == [
        "schema_version",
        "forenscope_version",
        "analysis_config",
        "image",
        "verdict",
    ]
    back = Report.model_validate_json(text)
    assert report_to_json(back) == text
    assert back.regions[0].bbox == report.regions[0].bbox
    assert back.verdict == report.verdict


def test_explanation_cites_evidence_region_and_abstainer(report: Report) -> None:
    text = report.explanation
    assert "tampered" in text and "not yet calibrated" in text
    assert "312 matched keypoint pairs" in text and "[copy_move]" in text
    assert "upper-left" in text
    assert "c2pa_manifest" in text  # did not vote, and the report says so


def test_explanation_when_nobody_judged(report: Report) -> None:
    experts = [r for r in report.experts if not r.judged]
    fused = fuse(experts, height=H, width=W)
    empty = report.model_copy(
        update={"verdict": fused.verdict, "regions": [], "key_evidence": [], "experts": experts}
    )
    text = explain(empty)
    assert text.startswith("No expert could judge this image")
    assert "not a finding" in text


def test_html_is_self_contained_with_overlays(report: Report, image: ImageInput) -> None:
    page = render_html(report, image)
    assert page.count("data:image/jpeg;base64,") == 1
    layers = re.findall(r'<img class="layer" data-layer="([^"]+)"', page)
    assert layers == ["fused", "expert-0", "expert-2"]  # fused + copy_move + noise maps
    assert 'class="outline"' in page and page.count('class="box"') == 1
    assert 'type="range" id="opacity"' in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from outside
    assert "<link" not in page and "@import" not in page


def test_html_and_markdown_escape_hostile_strings(report: Report, image: ImageInput) -> None:
    page = render_html(report, image)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only our own toggle script
    assert "x&lt;y&gt;.jpg" in page
    markdown = render_markdown(report)
    assert HOSTILE not in markdown and "<script" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


def test_markdown_sections(report: Report) -> None:
    md = render_markdown(report)
    for heading in ("## Attribution", "## Regions", "## Key evidence", "## Experts", "## Timings"):
        assert heading in md
    assert "**Verdict: Tampered · 0.84**" in md
    assert "| c2pa\\_manifest |" in md and "abstained" in md
    assert "312 matched keypoint pairs" in md


def test_write_report_writes_files_and_sidecars(
    report: Report, image: ImageInput, tmp_path: Path
) -> None:
    paths = write_report(report, image, tmp_path / "out")
    assert set(paths) == {"json", "md", "html", "heatmap", "mask"}
    assert paths["json"].name == "x_y.json"
    assert Report.model_validate_json(paths["json"].read_text()).verdict == report.verdict
    with Image.open(paths["heatmap"]) as heat, Image.open(paths["mask"]) as mask:
        assert heat.size == mask.size == (W, H)
        assert set(np.unique(np.asarray(mask)).tolist()) == {0, 255}
    only = write_report(report, None, tmp_path / "json", formats=("json",), stem="a")
    assert sorted(p.name for p in only.values()) == ["a.heatmap.png", "a.json", "a.mask.png"]
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(report, image, tmp_path, formats=("pdf",))


def test_html_without_image_or_maps(report: Report) -> None:
    back = Report.model_validate_json(report_to_json(report))
    page = render_html(back, None)
    assert "data:image/jpeg" not in page and 'class="layer"' not in page
    assert 'class="box"' in page  # regions survive JSON and are still drawn


def test_overlay_colours_and_transparency() -> None:
    assert INFERNO_LUT[0].sum() < 30 and INFERNO_LUT[255].sum() > 600
    ramp = np.linspace(0, 1, 50, dtype=np.float32)[None, :].repeat(4, axis=0)
    rgba = heatmap_rgba(ramp, size=(100, 8))
    assert rgba.shape == (8, 100, 4)
    assert rgba[0, 0, 3] == 0 and rgba[0, -1, 3] > 200
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    outline = mask_outline_rgba(mask)
    assert outline[5, 10, 3] == 255 and outline[10, 10, 3] == 0 and outline[0, 0, 3] == 0


def test_overlay_png_is_a_small_palette_image_of_the_requested_size() -> None:
    noise = np.random.default_rng(0).random((300, 400)).astype(np.float32)
    data = overlay_png(noise, size=(200, 150))
    assert len(data) < len(png_bytes(heatmap_rgba(noise, size=(200, 150))))
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "P" and img.size == (200, 150)
    ramp = np.linspace(0, 1, 64, dtype=np.float32)[None, :].repeat(4, axis=0)
    with Image.open(io.BytesIO(overlay_png(ramp))) as img:
        rgba = np.asarray(img.convert("RGBA"))
    assert rgba[0, 0, 3] == 0 and rgba[0, -1, 3] > 200
    assert np.all(np.diff(rgba[0, :, 3].astype(int)) >= 0)  # more suspicious = more opaque


def test_schema_file_is_up_to_date() -> None:
    stored = (ROOT / "docs" / "report-schema.json").read_text(encoding="utf-8")
    assert stored == json_schema_text(), "run: python -m forenscope.report docs/report-schema.json"


def test_html_shows_the_daam_strip_when_the_detector_stored_it(report: Report) -> None:
    from forenscope.report import render_html

    assert "How the AI detector reached its answer" not in render_html(report)
    maps = [np.full((14, 14), b / 12, dtype=np.float32).round(3).tolist() for b in range(1, 13)]
    flow = {"blocks": 12, "decision_block": 9, "cls_score": [b / 12 for b in range(1, 13)]}
    clip = ExpertResult(
        expert="clip_detector", version="t", targets="ai_generated", score=0.9,
        details={"daam": maps, "daam_flow": flow},
    )  # fmt: skip
    report = report.model_copy(update={"experts": [*report.experts, clip]})
    page = render_html(report)
    section = page[page.index('<section id="daam">') :]
    section = section[: section.index("</section>")]
    assert '<details class="tech" open>' in section  # folded in the plain mode
    assert section.count('alt="what the detector weighed after step') == 12
    assert "reads the picture in 12 steps" in section  # plain words first
    assert "settles at step 9" in section and "the decision forms at block 9" in section


# --- issue 13: the HTML report as an analyst's and a reader's tool ------------------------------


def _embedded_image(page: str) -> Image.Image:
    match = re.search(r'<img class="base" alt="[^"]*" src="data:image/(\w+);base64,([^"]+)"', page)
    assert match is not None
    return Image.open(io.BytesIO(base64.b64decode(match.group(2))))


def test_html_embeds_the_full_resolution_original(report: Report) -> None:
    from forenscope.io import load_image

    rgb = np.random.default_rng(3).integers(0, 255, (120, 2400, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    image = load_image(buf.getvalue())
    big = report.model_copy(
        update={"image": report.image.model_copy(update={"width": 2400, "height": 120})}
    )
    page = render_html(big, image)
    assert f"data:image/jpeg;base64,{base64.b64encode(image.data).decode()}" in page  # as is
    assert _embedded_image(page).size == (2400, 120)  # not capped at 1600
    assert 'data-width="2400" data-height="120"' in page
    assert "The original file, at full resolution." in page
    for button in ('data-zoom="fit"', 'data-zoom="1"', 'data-zoom="in"', 'data-zoom="out"'):
        assert button in page


def test_html_re_encodes_what_a_browser_would_not_show_as_analysed(
    report: Report, image: ImageInput
) -> None:
    rotated = ImageInput(
        rgb=image.rgb, data=b"not shown", format="JPEG", mode="RGB", orientation=6, path="r.jpg"
    )
    page = render_html(report, rotated)
    shown = _embedded_image(page)
    assert shown.format == "PNG" and shown.size == (W, H)
    assert np.array_equal(np.asarray(shown.convert("RGB")), image.rgb)  # lossless copy
    assert "A lossless copy of the decoded JPEG pixels" in page


def test_overlays_keep_the_maps_own_resolution() -> None:
    from forenscope.report.html import MAX_MAP_SIDE, _map_size

    assert _map_size((300, 400), 4000, 3000) == (400, 300)  # not stretched to the picture
    assert _map_size((3000, 4000), 4000, 3000) == (MAX_MAP_SIDE, 1536)
    assert _map_size((90, 120), 120, 90) == (120, 90)
    assert max(_map_size((1000, 1000), 8000, 6000)) == 1000  # not the old 640 px cap


def _with_copy_pair(report: Report) -> Report:
    """The fixture's report with a second region and the copy_move pair that links the two."""
    from forenscope.types import BBox

    first = report.regions[0]
    second = first.model_copy(
        update={
            "id": 2,
            "bbox": BBox(x=70, y=50, width=40, height=30),
            "bbox_relative": (70 / W, 50 / H, 40 / W, 30 / H),
            "relative_position": "lower-right",
        }
    )
    pair = {"a": first.bbox.model_dump(), "b": second.bbox.model_dump(), "cells": 40}
    experts = [
        r.model_copy(update={"details": {"pairs": [pair]}}) if r.expert == "copy_move" else r
        for r in report.experts
    ]
    return report.model_copy(update={"regions": [first, second], "experts": experts})


def test_copy_move_pairs_are_linked_and_numbered(report: Report, image: ImageInput) -> None:
    paired = _with_copy_pair(report)
    page = render_html(paired, image)
    assert page.count('class="pair"') == 2
    assert "pair 1A" in page and "pair 1B" in page
    assert page.count('class="pair-line"') == 1  # A and B joined by a line
    assert "<span>1 · pair 1, side A</span>" in page and "<span>2 · pair 1, side B</span>" in page
    assert "copy-move pair 1, side B" in page  # in the regions table too
    assert 'id="show-pairs"' in page
    md = render_markdown(paired)
    assert "Areas 1 and 2 are copy pair 1: one is a copy of the other." in md


def test_blank_layers_say_the_expert_found_nothing(report: Report, image: ImageInput) -> None:
    blank = ExpertResult(
        expert="ela", version="1", targets="tampered", score=0.0, has_heatmap=True,
        heatmap=np.full((H, W), 0.03, np.float32),
    )  # fmt: skip
    report = report.model_copy(update={"experts": [*report.experts, blank]})
    page = render_html(report, image)
    ela = re.search(r'value="expert-4"[^>]*data-nothing="([^"]*)"', page)
    assert ela is not None and ela.group(1).startswith("this expert found nothing")
    assert 'ela <span class="nothing">(this expert found nothing)</span>' in page
    faint = re.search(r'value="expert-2"[^>]*data-nothing="([^"]*)"', page)  # noise, up to 0.3
    assert faint is not None and faint.group(1) == ""
    copy_move = re.search(r'value="expert-0"[^>]*data-nothing="([^"]*)"', page)
    assert copy_move is not None and copy_move.group(1) == ""  # its map has a hot block
    assert '<p class="layer-note" hidden></p>' in page  # the script shows the note on choice


def test_legend_names_the_colours(report: Report, image: ImageInput) -> None:
    page = render_html(report, image)
    legend = page[page.index('<div class="legend"') :]
    legend = legend[: legend.index("</div>")]
    assert "linear-gradient" in legend and "0 nothing" in legend and "1 most suspicious" in legend
    lut = INFERNO_LUT[0].tolist()
    assert f"rgb({lut[0]},{lut[1]},{lut[2]}) 0%" in legend
    assert "numbered region" in legend and "mask outline" in legend


def test_text_agrees_with_the_boxes_drawn(report: Report, image: ImageInput) -> None:
    """Fusion words the scope the way the report draws the map: two separate hot areas, none
    dominating, read as "2 regions", not as "nothing stands out"; every renderer shows that
    basis as fusion wrote it."""
    two_areas = np.full((H, W), 0.05, np.float32)
    two_areas[5:25, 5:25] = 0.9
    two_areas[60:80, 95:115] = 0.9
    ela = ExpertResult(
        expert="ela", version="1", targets="tampered", score=0.9, heatmap=two_areas,
        has_heatmap=True,
    )  # fmt: skip
    fused = fuse([ela], height=H, width=W)
    assert fused.heatmap is not None
    assert fused.regions == localize(fused.heatmap, results=[ela])[1]  # what analyze draws
    assert len(fused.regions) == 2
    basis = fused.attribution.basis
    assert "no compact region stands out" not in basis
    assert "the fused map marks 2 regions, none dominating" in basis
    two = report.model_copy(
        update={"attribution": fused.attribution, "regions": fused.regions, "experts": [ela]}
    )
    two = two.model_copy(update={"explanation": explain(two)})
    page, md = render_html(two, image), render_markdown(two)
    assert len(re.findall(r'class="box( flip)?"', page)) == 2
    for text in (page, md, two.explanation):
        assert "the fused map marks 2 regions, none dominating" in text
    # with no region drawn (the map under a higher threshold) the words say so
    bare = fuse([ela], height=H, width=W, threshold=0.95)
    assert bare.regions == [] and "no compact region stands out" in bare.attribution.basis
    one = attribute("ai_generated", [], None, regions=1).basis
    assert one.endswith("the fused map marks one region that does not dominate it, so the whole "
                        "image is implicated")  # fmt: skip


def test_jargon_is_explained_where_it_appears(report: Report, image: ImageInput) -> None:
    clip = ExpertResult(
        expert="clip_detector", version="t", targets="ai_generated", score=0.2,
        evidence=[Evidence(kind="clip.generated", summary="P = 0.20 (logit -1.39; AUC 0.95)",
                           value=0.2)],
    )  # fmt: skip
    report = report.model_copy(update={"experts": [*report.experts, clip]})
    page = render_html(report, image)
    assert '<abbr title="the detector&#x27;s raw score' in page and ">logit</abbr>" in page
    assert ">AUC</abbr>" in page
    assert '<section id="terms">' in page and "<dt>AUC</dt>" in page


def test_inconclusive_shows_its_leaning_and_probability(report: Report, image: ImageInput) -> None:
    verdict = report.verdict.model_copy(
        update={"label": "inconclusive", "leaning": "tampered", "probability": 0.62}
    )
    page = render_html(report.model_copy(update={"verdict": verdict}), image)
    assert 'class="verdict label-inconclusive"' in page
    assert "Inconclusive (needs review), leaning Tampered · 0.62" in page
    assert (
        "Needs review: the evidence leans to <strong>Tampered</strong> with probability 0.62"
        in page
    )
    assert "Tampered <strong>(leaning)</strong>" in page
    assert "Not decided, needs review" in page  # the plain sentence


def test_plain_mode_toggle_and_technical_sections(report: Report, image: ImageInput) -> None:
    page = render_html(report, image)
    assert '<button type="button" id="mode-plain" aria-pressed="false">' in page
    assert page.index('class="plain"') < page.index('<section id="summary">')
    for section in ("summary", "regions", "evidence", "experts", "image", "terms"):
        start = page.index(f'<section id="{section}">')
        assert page[start:].split(">", 2)[1].startswith('<details class="tech" open')


def test_tables_stack_on_a_phone(report: Report, image: ImageInput) -> None:
    page = render_html(report, image)
    assert page.count('<table class="stack">') >= 3  # verdict, regions, experts
    assert '<td data-label="description">' in page
    assert "@media (max-width: 600px)" in page and "table.stack td::before" in page


def test_badge_colours_meet_wcag_aa_in_light_and_dark() -> None:
    from forenscope.report.html_assets import (
        BADGE_COLOURS,
        BADGE_LABELS,
        CSS,
        PAGE_COLOURS,
        badge_css,
        contrast_ratio,
    )

    for scheme, colours in BADGE_COLOURS.items():
        assert set(colours) == set(BADGE_LABELS)
        for label, colour in colours.items():
            assert contrast_ratio(colour.background, colour.text) >= 4.5, (scheme, label)
        bg, fg, muted = PAGE_COLOURS[scheme][:3]
        assert contrast_ratio(bg, fg) >= 7 and contrast_ratio(bg, muted) >= 4.5
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    css = badge_css(".verdict.{label}")
    assert ".verdict.tampered { background: #b3261e; color: #ffffff; }" in css
    assert "@media (prefers-color-scheme: dark)" in css and "#f2b8b5" in css
    assert ".label-tampered { background: #b3261e" in CSS and ".decided-none {" in CSS
