"""The per-face experts: abstain without a face, flag a blended face, keep per-face records."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from forenscope.experts.face_consistency import FaceConsistencyExpert
from forenscope.experts.face_eyes import FaceEyeHighlightsExpert
from forenscope.experts.face_seam import FaceSeamExpert
from forenscope.faces import detect as detect_mod
from forenscope.faces import detect_faces, face_reports
from forenscope.io.input import ImageInput
from forenscope.models.cache import default_cache_dir
from forenscope.models.faces import FACE_MODELS

EXPERTS = (FaceSeamExpert, FaceConsistencyExpert, FaceEyeHighlightsExpert)


def as_input(rgb: np.ndarray) -> ImageInput:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return ImageInput(rgb=rgb, data=buf.getvalue(), format="PNG", mode="RGB")


def portrait(seed: int = 0, size: int = 320) -> np.ndarray:
    """A drawn portrait with photo-like noise everywhere (face, hair, background)."""
    img = Image.new("RGB", (size, size), (110, 130, 150))
    d = ImageDraw.Draw(img)
    c, s = size / 2, size / 256

    def ell(x0: float, y0: float, x1: float, y1: float, fill: tuple[int, int, int]) -> None:
        d.ellipse((c + x0 * s, c + y0 * s, c + x1 * s, c + y1 * s), fill=fill)

    ell(-62, -98, 62, 40, (60, 40, 25))
    ell(-80, -12, -58, 30, (215, 165, 135))
    ell(58, -12, 80, 30, (215, 165, 135))
    d.rectangle((c - 22 * s, c + 60 * s, c + 22 * s, size), fill=(205, 155, 125))
    ell(-60, -70, 60, 85, (225, 175, 145))
    for ex in (-25, 25):
        d.line((c + (ex - 14) * s, c - 22 * s, c + (ex + 14) * s, c - 24 * s), (60, 40, 25), 5)
        ell(ex - 13, -12, ex + 13, 2, (220, 218, 212))  # sclera: dimmer than a reflection
        ell(ex - 6, -11, ex + 6, 1, (70, 50, 35))
        ell(ex + 1, -9, ex + 4, -6, (255, 255, 255))
    nose = [(c - 3 * s, c), (c - 12 * s, c + 28 * s), (c + 12 * s, c + 28 * s), (c + 3 * s, c)]
    d.polygon(nose, fill=(205, 150, 120))
    ell(-22, 44, 22, 58, (170, 70, 70))
    img = img.filter(ImageFilter.GaussianBlur(2))
    noise = np.random.default_rng(seed).normal(0, 3.0, (size, size, 3))
    return np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8)


def blend_inner_face(rgb: np.ndarray, factor: float = 0.85) -> np.ndarray:
    """A face-swap stand-in: the inner face replaced by a smoother copy, feathered in."""
    report = face_reports(detect_faces(rgb), rgb.shape[:2])[0]
    skin = np.array(next(r.polygon for r in report.regions if r.name == "face skin"))
    inner = skin.mean(0) + (skin - skin.mean(0)) * factor
    mask = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in inner.tolist()], fill=255)
    w = np.asarray(mask.filter(ImageFilter.GaussianBlur(2)), np.float32)[..., None] / 255
    smooth = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(1.5)), np.float32)
    return np.asarray((rgb * (1 - w) + smooth * w).round(), np.uint8)


@pytest.mark.parametrize("cls", EXPERTS)
def test_abstain_without_a_face(face_models: Path, cls: type) -> None:
    res = cls().analyze(as_input(np.full((200, 200, 3), 90, np.uint8)))
    assert res.score is None and res.error is None
    assert res.abstain_reason == "no face found in the image"
    assert res.details["faces"] == 0


@pytest.mark.parametrize("cls", EXPERTS)
def test_abstain_without_any_detector(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    def unavailable(*_a: object, **_k: object) -> str:
        raise detect_mod.FaceDetectorUnavailable("no face detector: pip install ai-edge-litert")

    monkeypatch.setattr(detect_mod, "backend_in_effect", unavailable)
    res = cls().analyze(as_input(portrait()))
    assert res.score is None and res.error is None
    assert "ai-edge-litert" in (res.abstain_reason or "")


def test_seam_flags_a_blended_face(face_models: Path) -> None:
    clean = portrait()
    seam = FaceSeamExpert()
    before = seam.analyze(as_input(clean))
    after = seam.analyze(as_input(blend_inner_face(clean)))
    assert before.score is not None and after.score is not None
    assert after.score >= 0.5 > before.score
    assert after.heatmap is not None and after.heatmap.shape == clean.shape[:2]
    assert "face 1: crossing the ring at 0.8" in after.evidence[0].summary
    entry = after.details["per_face"][0]
    assert entry["face"] == 1 and entry["score"] == after.score


def test_consistency_flags_a_noisier_face(face_models: Path) -> None:
    clean = portrait(seed=5)
    report = face_reports(detect_faces(clean), clean.shape[:2])[0]
    skin = next(r.polygon for r in report.regions if r.name == "face skin")
    mask = Image.new("L", (clean.shape[1], clean.shape[0]), 0)
    ImageDraw.Draw(mask).polygon(skin, fill=1)
    noisy = clean.astype(np.float32)
    noisy[np.asarray(mask, bool)] += np.random.default_rng(6).normal(0, 12, (1, 3))
    noisy[np.asarray(mask, bool)] += np.random.default_rng(7).normal(
        0, 10, (int(np.asarray(mask).sum()), 3)
    )
    tampered = np.clip(noisy, 0, 255).astype(np.uint8)
    expert = FaceConsistencyExpert()
    a, b = expert.analyze(as_input(clean)), expert.analyze(as_input(tampered))
    assert a.score is not None and b.score is not None
    assert b.score >= 0.6 > a.score
    assert any("luma noise floor" in e.summary for e in b.evidence)


def test_per_face_checks_land_in_face_reports(face_models: Path) -> None:
    rgb = np.concatenate([portrait(seed=1), portrait(seed=2)], axis=1)
    image = as_input(rgb)
    results = [cls().analyze(image) for cls in EXPERTS]
    reports = face_reports(detect_faces(rgb), rgb.shape[:2], results)
    assert [r.index for r in reports] == [1, 2]
    for report in reports:
        assert {c.expert for c in report.checks} == {e.spec.name for e in EXPERTS}
        for check in report.checks:
            assert (check.score is None) != (check.abstain_reason is None)
            assert all(e.summary.startswith(report.label) for e in check.evidence)


def test_face_clip_abstains_without_the_encoder(
    face_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forenscope.experts.face_clip import FaceClipExpert

    monkeypatch.delenv("FORENSCOPE_CLIP_ONNX", raising=False)
    monkeypatch.delenv("FORENSCOPE_AUTO_PULL", raising=False)
    res = FaceClipExpert().analyze(as_input(portrait()))
    assert res.score is None and res.error is None
    assert "models pull" in (res.abstain_reason or "")


def test_aligned_crop_levels_the_eyes(face_models: Path) -> None:
    from forenscope.experts.face_clip import aligned_crop

    rgb = np.asarray(Image.fromarray(portrait(seed=3)).rotate(25, fillcolor=(110, 130, 150)))
    face = detect_faces(rgb)[0]
    crop = aligned_crop(rgb, face)
    assert crop.shape == (256, 256, 3)
    again = detect_faces(crop)
    assert len(again) == 1 and abs(np.degrees(again[0].roll)) < 6


def test_face_clip_scores_each_face(face_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope.experts.face_clip import FaceClipExpert
    from forenscope.models.registry import CLIP_B16_INT8

    onnx = default_cache_dir() / "models" / CLIP_B16_INT8.name / CLIP_B16_INT8.filename
    if not onnx.is_file():
        pytest.skip("CLIP encoder not cached (forenscope models pull)")
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(onnx))
    res = FaceClipExpert().analyze(as_input(portrait()))
    assert res.score is not None and 0.0 <= res.score <= 1.0
    assert res.evidence[0].summary.startswith("face 1: the CLIP real-vs-generated head")
    assert res.details["per_face"][0]["score"] == res.score


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("size", [(20, 24), (200, 160), (320, 320)])
def test_contract_with_and_without_models(
    which: int, size: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry contract (no error, a reason when abstaining, deterministic, JSON), both
    when the face models are missing (a fresh clone) and when they are there."""
    from forenscope.experts.face_clip import FaceClipExpert
    from forenscope.io import load_image
    from forenscope.types import ExpertResult

    cls = (*EXPERTS, FaceClipExpert)[which]
    rgb = portrait(size=320)[: size[1], : size[0]] if size != (320, 320) else portrait()
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=90)
    image = load_image(buf.getvalue())
    monkeypatch.setenv("FORENSCOPE_FACE_MODELS_DIR", str(tmp_path / "empty"))
    missing = cls().analyze(image)
    assert missing.score is None and missing.error is None and missing.abstain_reason
    cached = [s for s in FACE_MODELS.values() if (default_cache_dir() / "models" / s.name).is_dir()]
    if len(cached) == len(FACE_MODELS) and cls is not FaceClipExpert:
        flat = tmp_path / "m"
        flat.mkdir()
        for s in FACE_MODELS.values():
            shutil.copy(default_cache_dir() / "models" / s.name / s.filename, flat / s.filename)
        monkeypatch.setenv("FORENSCOPE_FACE_MODELS_DIR", str(flat))
    first, again = cls().analyze(image), cls().analyze(image)
    assert first.error is None, first.error
    assert (first.score is None) == bool(first.abstain_reason)
    assert again.score == first.score
    assert [e.summary for e in again.evidence] == [e.summary for e in first.evidence]
    if first.heatmap is not None:
        assert first.heatmap.shape == rgb.shape[:2] and first.heatmap.dtype == np.float32
        assert 0.0 <= first.heatmap.min() <= first.heatmap.max() <= 1.0
    ExpertResult.model_validate_json(first.model_dump_json())


def eyes_with_highlights(offsets: list[tuple[float, float]]) -> np.ndarray:
    """A 512 px portrait (eyes ~50 px wide) whose irises are redrawn with one sharp highlight
    each at (dx, dy) from the iris centre, in drawing units (the iris radius is 6)."""
    img = Image.fromarray(portrait(seed=8, size=512))
    d, c, s = ImageDraw.Draw(img), 256, 2.0
    for ex, (dx, dy) in zip((-25, 25), offsets, strict=True):
        d.ellipse((c + (ex - 6) * s, c - 11 * s, c + (ex + 6) * s, c + 1 * s), fill=(70, 50, 35))
        x, y = c + (ex + dx) * s, c - 5 * s + dy * s
        d.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=(255, 255, 255))
    return np.asarray(img)


def test_eye_highlights_agree_or_not(face_models: Path) -> None:
    expert = FaceEyeHighlightsExpert()
    same = expert.analyze(as_input(eyes_with_highlights([(1, -1), (1, -1)])))
    apart = expert.analyze(as_input(eyes_with_highlights([(2.5, 0), (-2.5, 0)])))
    assert same.score is not None and apart.score is not None, (same, apart)
    assert same.score < 0.3 and apart.score >= 0.8
    assert "eye widths apart" in apart.evidence[0].summary


def test_eye_highlights_abstain_on_small_eyes(face_models: Path) -> None:
    res = FaceEyeHighlightsExpert().analyze(as_input(portrait()))  # eyes ~30 px wide
    assert res.score is None and "face 1: eyes too small" in (res.abstain_reason or "")
