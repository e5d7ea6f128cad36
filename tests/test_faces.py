"""Faces (issue 7): detection on drawn faces, named regions, per-face experts, degradation.

The MediaPipe .tflite files are looked up in FORENSCOPE_FACE_MODELS_DIR or the user cache
(`forenscope.models.faces.pull_face_models()`); tests that need them skip when absent.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from forenscope.errors import ModelError
from forenscope.faces import describe_region_on_faces, detect_faces, face_reports
from forenscope.faces import detect as detect_mod
from forenscope.faces.detect import Face, FaceDetectorUnavailable
from forenscope.io.input import ImageInput
from forenscope.models.faces import FACE_MODELS, model_path, pull_face_models
from forenscope.types import BBox


# -- drawn test faces ------------------------------------------------------------------------
def draw_face(
    size: tuple[int, int] = (256, 256), cx: float = 128, cy: float = 136, s: float = 1.0,
    seed: int = 0, flat: bool = False,
) -> np.ndarray:  # fmt: skip
    """A frontal face-like drawing (hair, ears, eyes with highlights, nose, lips, neck)."""
    img = Image.new("RGB", size, (120, 140, 160))
    d = ImageDraw.Draw(img)

    def ell(x0: float, y0: float, x1: float, y1: float, fill: tuple[int, int, int]) -> None:
        d.ellipse((cx + x0 * s, cy + y0 * s, cx + x1 * s, cy + y1 * s), fill=fill)

    ell(-62, -98, 62, 40, (60, 40, 25))  # hair
    ell(-80, -12, -58, 30, (215, 165, 135))  # ears
    ell(58, -12, 80, 30, (215, 165, 135))
    d.rectangle((cx - 22 * s, cy + 60 * s, cx + 22 * s, size[1]), fill=(205, 155, 125))
    ell(-60, -70, 60, 85, (225, 175, 145))  # face
    for ex in (-25, 25):
        brow = (cx + (ex - 14) * s, cy - 22 * s, cx + (ex + 14) * s, cy - 24 * s)
        d.line(brow, fill=(60, 40, 25), width=max(1, int(5 * s)))
        ell(ex - 13, -12, ex + 13, 2, (245, 245, 240))
        ell(ex - 6, -11, ex + 6, 1, (70, 50, 35))
        ell(ex - 3, -8, ex + 3, -2, (10, 10, 10))
        ell(ex + 1, -9, ex + 4, -6, (255, 255, 255))
    nose = [
        (cx - 3 * s, cy),
        (cx - 12 * s, cy + 28 * s),
        (cx + 12 * s, cy + 28 * s),
        (cx + 3 * s, cy),
    ]
    d.polygon(nose, fill=(205, 150, 120))
    ell(-22, 44, 22, 58, (170, 70, 70))
    if flat:  # a cartoon: flat colours, hard edges, no noise
        return np.asarray(img)
    img = img.filter(ImageFilter.GaussianBlur(1.5 * s))
    noise = np.random.default_rng(seed).normal(0, 2.0, (size[1], size[0], 3))
    return np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8)


def as_input(rgb: np.ndarray) -> ImageInput:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return ImageInput(rgb=rgb, data=buf.getvalue(), format="PNG", mode="RGB")


def part_box(rgb: np.ndarray, part: str) -> BBox:
    """The box of a named region on the face detected in `rgb`."""
    reports = face_reports(detect_faces(rgb), rgb.shape[:2])
    return next(r.bbox for r in reports[0].regions if r.name == part)


# -- naming regions without any model --------------------------------------------------------
def keypoint_face() -> Face:
    kps = {
        "right_eye": (100.0, 120.0),
        "left_eye": (156.0, 120.0),
        "nose_tip": (128.0, 150.0),
        "mouth": (128.0, 175.0),
        "right_ear": (70.0, 135.0),
        "left_ear": (186.0, 135.0),
    }
    return Face(np.array([78.0, 80.0, 178.0, 200.0]), 0.9, "test", kps)


def test_region_naming_from_given_keypoints() -> None:
    reports = face_reports([keypoint_face()], (256, 256))
    assert all(r.approximate for r in reports[0].regions)
    assert any("no landmark mesh" in n for n in reports[0].notes)
    name = describe_region_on_faces(BBox(x=152, y=117, width=8, height=6), reports)
    assert name == "the left eye (the person's left) of face 1"
    assert "mouth" in (
        describe_region_on_faces(BBox(x=120, y=172, width=16, height=6), reports) or ""
    )
    assert describe_region_on_faces(BBox(x=0, y=0, width=20, height=20), reports) is None
    assert describe_region_on_faces(BBox(x=70, y=70, width=120, height=150), reports) == (
        "most of face 1"
    )
    assert describe_region_on_faces(BBox(x=10, y=10, width=5, height=5), []) is None


def test_regions_stay_inside_the_image() -> None:
    face = keypoint_face()
    face.box = face.box - 75  # a face cut by the top-left corner
    face.keypoints = {k: (x - 75, y - 75) for k, (x, y) in face.keypoints.items()}
    for region in face_reports([face], (120, 120))[0].regions:
        b = region.bbox
        assert b.x >= 0 and b.y >= 0 and b.x + b.width <= 120 and b.y + b.height <= 120


# -- the detector on drawn faces -------------------------------------------------------------
def test_detects_the_drawn_face_with_a_mesh(face_models: Path) -> None:
    faces = detect_faces(draw_face())
    assert len(faces) == 1
    face = faces[0]
    assert face.mesh is not None and face.mesh.shape == (468, 2)
    assert 60 < face.box[0] < 100 and 160 < face.box[2] < 200
    # the person's left eye is on the image's right, at the drawn eye (153, 131)
    lx, ly = face.keypoints["left_eye"]
    assert abs(lx - 153) < 8 and abs(ly - 131) < 8
    report = face_reports(faces, (256, 256))[0]
    assert report.face.landmark_count == 468
    names = [r.name for r in report.regions]
    for part in ("left eye", "right eye", "nose", "mouth", "jaw line", "hairline", "left ear"):
        assert part in names


@pytest.mark.parametrize(
    ("part", "centre"), [("left eye", (153, 131)), ("mouth", (128, 187)), ("right eye", (103, 131))]
)
def test_altered_part_is_named(face_models: Path, part: str, centre: tuple[int, int]) -> None:
    rgb = draw_face().copy()
    x, y = centre
    patch = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    rgb[y - 3 : y + 3, x - 5 : x + 5] = patch
    reports = face_reports(detect_faces(rgb), rgb.shape[:2])
    assert len(reports) == 1
    words = describe_region_on_faces(BBox(x=x - 5, y=y - 3, width=10, height=6), reports)
    assert words is not None and words.startswith(f"the {part}") and words.endswith("face 1")


def test_no_face_anywhere(face_models: Path) -> None:
    rng = np.random.default_rng(2)
    flat = np.full((200, 300, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (240, 240, 3), dtype=np.uint8)
    ramp = np.repeat(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], 180, 0)
    for rgb in (flat, noise, np.repeat(ramp, 3, 2)):
        assert detect_faces(rgb) == []
        assert face_reports([], rgb.shape[:2]) == []


def test_two_faces_numbered_left_to_right(face_models: Path) -> None:
    left, right = draw_face(seed=3), draw_face(seed=4)
    rgb = np.concatenate([left, right], axis=1)
    faces = detect_faces(rgb)
    assert len(faces) == 2
    assert faces[0].box[2] < faces[1].box[0]
    reports = face_reports(faces, rgb.shape[:2])
    assert describe_region_on_faces(BBox(x=256 + 148, y=128, width=10, height=6), reports) == (
        "the left eye (the person's left) of face 2"
    )


@pytest.mark.parametrize(
    "rgb_fn",
    [
        lambda: draw_face((256, 256), 128, 128, s=0.12),  # tiny
        lambda: draw_face((640, 480), 60, 60, s=0.2),  # tiny, off centre in a larger image
        lambda: _half_mirrored(draw_face()),  # profile-like
        lambda: draw_face(flat=True),  # flat cartoon
    ],
    ids=["tiny", "tiny-large-image", "mirrored-half", "cartoon"],
)
def test_hard_cases_do_not_crash_or_invent(face_models: Path, rgb_fn: object) -> None:
    rgb = rgb_fn()  # type: ignore[operator]
    faces = detect_faces(rgb)
    h, w = rgb.shape[:2]
    for report in face_reports(faces, (h, w)):
        assert report.regions, "a reported face always has named regions"
        for region in report.regions:
            b = region.bbox
            assert b.x + b.width <= w and b.y + b.height <= h
        if report.face.landmark_count == 0:
            assert all(r.approximate for r in report.regions)
    if not faces:
        assert describe_region_on_faces(BBox(x=0, y=0, width=w, height=h), []) is None


def _half_mirrored(rgb: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[:, 128:] = rgb[:, :128][:, ::-1]
    out[:, :40] = 120  # and cut one side away
    return out


def test_skimage_cascade_gives_approximate_regions() -> None:
    pytest.importorskip("skimage")
    faces = detect_faces(draw_face(), backend="skimage-lbp")
    assert len(faces) == 1 and faces[0].mesh is None
    report = face_reports(faces, (256, 256))[0]
    assert report.face.detector == "skimage-lbp-cascade" and report.face.score is None
    assert all(r.approximate for r in report.regions)


# -- degradation and models -------------------------------------------------------------------
def test_no_backend_raises_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORENSCOPE_FACE_DETECTOR", raising=False)
    monkeypatch.setattr(detect_mod, "mediapipe_available", lambda: "no TFLite runtime: pip ...")
    with pytest.raises(FaceDetectorUnavailable, match="no TFLite runtime"):
        detect_mod.backend_in_effect()  # never a silent fall back to the weak cascade
    monkeypatch.setenv("FORENSCOPE_FACE_DETECTOR", "skimage-lbp")
    if detect_mod.importlib.util.find_spec("skimage") is not None:
        assert detect_mod.backend_in_effect() == "skimage-lbp"
    monkeypatch.setattr(detect_mod.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FaceDetectorUnavailable, match="needs scikit-image"):
        detect_mod.backend_in_effect()
    monkeypatch.setenv("FORENSCOPE_FACE_DETECTOR", "dlib")
    with pytest.raises(FaceDetectorUnavailable, match="unknown face detector 'dlib'"):
        detect_mod.backend_in_effect()


def test_model_path_without_cache_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORENSCOPE_FACE_MODELS_DIR", raising=False)
    monkeypatch.delenv("FORENSCOPE_AUTO_PULL", raising=False)
    with pytest.raises(ModelError, match="pull_face_models"):
        model_path(FACE_MODELS["mediapipe-face-landmark"])


def test_pull_rejects_a_wheel_with_wrong_bytes(tmp_path: Path) -> None:
    wheel = tmp_path / "mediapipe-0.10.21-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for spec in FACE_MODELS.values():
            assert spec.member is not None
            zf.writestr(spec.member, b"not a model")
    with pytest.raises(ModelError, match="sha256"):
        pull_face_models(wheel=wheel)
    assert not any(s.cached_path().exists() for s in FACE_MODELS.values())


# -- shared data ----------------------------------------------------------------------------
@pytest.mark.data
def test_detection_on_stargan_faces(shared_data: Path, face_models: Path) -> None:
    with open(shared_data / "manifest.csv", newline="") as fh:
        paths = [r["path"] for r in csv.DictReader(fh) if "stargan" in r["path"]]
    assert len(paths) >= 20
    one = 0
    for p in paths:
        faces = detect_faces(np.asarray(Image.open(shared_data / p).convert("RGB")))
        one += len(faces) == 1 and faces[0].mesh is not None
    assert one / len(paths) >= 0.95


def test_small_faces_in_a_large_image_are_found_by_tiles(face_models: Path) -> None:
    rng = np.random.default_rng(0)
    big = np.clip(np.full((1200, 1600, 3), (120, 140, 160)) + rng.normal(0, 2, (1200, 1600, 3)),
                  0, 255).astype(np.uint8)  # fmt: skip
    spots = [(200, 200, 0.35), (900, 700, 0.45), (1300, 300, 0.3)]
    for x, y, s in spots:
        side = int(256 * s) + 40
        small = draw_face((side, side), side / 2, side / 2 + 5, s=s, seed=1)
        big[y : y + side, x : x + side] = small
    faces = detect_faces(big)
    assert len(faces) == 3
    # numbered left to right, each inside the square it was drawn in
    for face, (x, y, s) in zip(faces, spots, strict=True):
        side = int(256 * s) + 40
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        assert x < cx < x + side and y < cy < y + side


def test_rotated_face_gets_its_roll(face_models: Path) -> None:
    rgb = np.asarray(Image.fromarray(draw_face()).rotate(20, fillcolor=(120, 140, 160)))
    faces = detect_faces(rgb)
    assert len(faces) == 1
    # PIL rotates counter-clockwise: the eye line then points up to the right (negative roll)
    assert -28 < np.degrees(faces[0].roll) < -12


def test_analyze_faces_and_prompt_text(face_models: Path) -> None:
    from forenscope.experts.face_common import analyze_faces
    from forenscope.faces import faces_for_prompt

    reports, why = analyze_faces(as_input(draw_face()))
    assert why is None and len(reports) == 1
    text = faces_for_prompt(reports, 256, 256)
    assert text.startswith("Faces (left/right are the person's own sides")
    assert "face 1: box (" in text and "left eye (" in text and "468 landmarks" in text
    assert faces_for_prompt([], 10, 10) == "No face was found in the image."


def test_analyze_faces_without_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope.experts.face_common import analyze_faces

    def unavailable(*_a: object, **_k: object) -> str:
        raise FaceDetectorUnavailable("no face detector: pip install ai-edge-litert")

    monkeypatch.setattr(detect_mod, "backend_in_effect", unavailable)
    assert analyze_faces(as_input(draw_face(seed=9))) == (
        [],
        "no face detector: pip install ai-edge-litert",
    )


# -- the face section of the report ------------------------------------------------------------
def test_report_has_a_face_section_with_named_regions(face_models: Path) -> None:
    from forenscope.pipeline import analyze_image
    from forenscope.report import render_html, render_markdown

    experts = ["face_seam", "face_consistency", "face_eye_highlights", "ela"]
    report = analyze_image(as_input(draw_face()), experts=experts, threads=1)
    assert len(report.faces) == 1 and not report.notes
    names = {r.name for r in report.faces[0].regions}
    assert {"left eye", "right eye", "mouth"} <= names
    md, page = render_markdown(report), render_html(report)
    assert "## Faces" in md and "### Face 1" in md and "left eye" in md
    assert "<h2>Faces</h2>" in page and "face_seam" in page


def test_no_face_means_no_face_section() -> None:
    from forenscope.pipeline import analyze_image
    from forenscope.report import render_markdown

    report = analyze_image(as_input(draw_face()), experts=["ela"], threads=1)
    assert report.faces == [] and "## Faces" not in render_markdown(report)


def test_large_image_faces_are_detected_on_the_averaged_image(
    face_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forenscope.faces import detect

    rgb = draw_face((512, 512), 256, 272, s=2.0, seed=2)
    full = detect_faces(rgb, memo=False)
    # as a 48 MP photo is: above the limit, so detected on the 2x2-averaged image
    monkeypatch.setattr(detect, "DETECT_MAX_PIXELS", 512 * 512 // 4)
    averaged = detect_faces(rgb, memo=False)
    assert len(full) == len(averaged) == 1
    a, b = full[0], averaged[0]
    assert np.abs(a.box - b.box).max() < 12  # in image pixels, scaled back
    for name in ("left_eye", "right_eye"):
        assert np.hypot(*np.subtract(a.keypoints[name], b.keypoints[name])) < 8
    assert b.mesh is not None and b.mesh.shape == (468, 2)  # the mesh runs on the full image
