"""Report renderers: JSON round trip, Markdown, one self-contained HTML file, sidecars, schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forenscope.fusion import fuse, localize
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
    report.explanation = explain(report)
    return report


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

    assert "DAAM" not in render_html(report)
    maps = [np.full((14, 14), b / 12, dtype=np.float32).round(3).tolist() for b in range(1, 13)]
    flow = {"blocks": 12, "decision_block": 9, "cls_score": [b / 12 for b in range(1, 13)]}
    clip = ExpertResult(
        expert="clip_detector", version="t", targets="ai_generated", score=0.9,
        details={"daam": maps, "daam_flow": flow},
    )  # fmt: skip
    report.experts.append(clip)
    page = render_html(report)
    assert "How the CLIP decision forms (DAAM)" in page
    assert page.count('alt="accumulated map after block') == 12
    assert "the decision forms at block 9" in page
