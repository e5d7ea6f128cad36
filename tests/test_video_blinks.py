"""Blink rate per face track (issue 17): a real face (a frame of the CC-BY ASL clip) whose
upper lids slide down over the eyes at known times, in clips the test writes; the count, the
rate and the notes when the span is too short or the frames too far apart to see a blink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forenscope.types import BlinkRate
from forenscope.video.analyze import analyze_video
from forenscope.video.blinks import eye_aspect_ratio
from video_fixtures import write_clip

av = pytest.importorskip("av", reason="PyAV is a core dependency of the video extra")
ASL = "video/real/intel-iot-devkit_sample-videos/again.mkv"
RIGHT_CONTOUR = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_CONTOUR = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
CLOSING = (0.5, 1.0, 1.0, 1.0, 0.5)  # one blink: 5 frames, 200 ms at 25 fps


def face_still(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The ASL clip's face, cropped and doubled (360 x 360, face about 140 px), and its mesh."""
    import cv2

    from forenscope.faces.detect import detect_faces

    with av.open(str(shared_data / ASL)) as c:
        still = next(f for i, f in enumerate(c.decode(video=0)) if i == 30)
    face = still.to_ndarray(format="rgb24")[40:220, 240:420]
    big = np.asarray(cv2.resize(face, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    mesh = detect_faces(big)[0].mesh
    assert mesh is not None
    return big, mesh


def lids_down(rgb: np.ndarray, mesh: np.ndarray, share: float) -> np.ndarray:
    """The upper lids slid down over `share` of each eye: the skin above the eye stretched
    down to the new lid line, with a dark lash line along it."""
    out = rgb.copy()
    for contour in (RIGHT_CONTOUR, LEFT_CONTOUR):
        pts = mesh[contour]
        x0, x1 = int(pts[:, 0].min()) - 2, int(pts[:, 0].max()) + 3
        top, bottom = float(pts[:, 1].min()) - 1, float(pts[:, 1].max()) + 1
        src_top = top - 1.2 * (bottom - top)
        lid = top + share * (bottom - top)
        for y in range(int(src_top), int(np.ceil(lid))):
            sy = src_top + (y - src_top) * (top - src_top) / max(lid - src_top, 1e-6)
            out[y, x0:x1] = rgb[round(sy), x0:x1]
        if share > 0:
            out[int(lid) - 1 : int(lid) + 1, x0 + 2 : x1 - 2] = (50, 35, 35)
    return out


def blinking_clip(
    path: Path, still: tuple[np.ndarray, np.ndarray], seconds: float, blinks: list[int], fps: int
) -> Path:
    """`seconds` of the face with camera-like noise; a blink starts at each frame of `blinks`."""
    big, mesh = still
    rng = np.random.default_rng(0)
    frames = []
    for t in range(round(seconds * fps)):
        share = next((CLOSING[t - b] for b in blinks if 0 <= t - b < len(CLOSING)), 0.0)
        img = lids_down(big, mesh, 0.95 * share) + rng.normal(0, 2, big.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return write_clip(path, frames, fps=fps)


def blink_of(path: Path) -> BlinkRate:
    report = analyze_video(path, budget=3, experts=["face_seam"])
    assert len(report.face_tracks) == 1, [t.summary for t in report.face_tracks]
    blink = report.face_tracks[0].blink
    assert blink is not None
    return blink


def test_the_eye_aspect_ratio_of_a_closing_eye_drops(shared_data: Path, face_models: Path) -> None:
    from forenscope.faces.detect import detect_faces
    from forenscope.video.blinks import RIGHT_EYE

    big, mesh = face_still(shared_data)
    shut = detect_faces(lids_down(big, mesh, 0.95))[0].mesh
    assert shut is not None
    open_ear, width = eye_aspect_ratio(mesh, RIGHT_EYE)
    assert width > 12 and eye_aspect_ratio(shut, RIGHT_EYE)[0] < 0.9 * open_ear


def test_blinks_are_counted_with_their_frames_and_rate(
    shared_data: Path, face_models: Path, tmp_path: Path
) -> None:
    """12 s at 25 fps with 4 blinks of 200 ms: every blink found where it is, none else."""
    blinks = [50, 125, 200, 262]
    path = blinking_clip(tmp_path / "blinks.mp4", face_still(shared_data), 12, blinks, 25)
    blink = blink_of(path)
    assert blink.sampled_fps == 12.5 and blink.span_s > 11.5
    assert blink.blinks == 4, blink
    for (first, last), start in zip(blink.blink_spans, blinks, strict=True):
        assert start <= first <= last <= start + len(CLOSING) - 1
    assert blink.per_minute == pytest.approx(4 * 60 / blink.span_s, abs=0.1)
    assert blink.note == ""


def test_a_short_track_has_a_count_but_no_rate(
    shared_data: Path, face_models: Path, tmp_path: Path
) -> None:
    """4 s without a blink: no blink is made up, and no rate is given for so short a span."""
    path = blinking_clip(tmp_path / "short.mp4", face_still(shared_data), 4, [], 25)
    blink = blink_of(path)
    assert blink.blinks == 0 and blink.per_minute is None
    assert "too short for a rate" in blink.note


def test_frames_too_far_apart_are_not_measured(
    shared_data: Path, face_models: Path, tmp_path: Path
) -> None:
    """4 fps (an animated GIF's rate): a blink falls between frames, so no count is given."""
    path = blinking_clip(tmp_path / "slow.mp4", face_still(shared_data), 3, [4], 4)
    blink = blink_of(path)
    assert blink.blinks is None and blink.per_minute is None
    assert "frames are 250 ms apart" in blink.note and "100 ms (10 fps)" in blink.note


def test_a_long_track_is_measured_over_a_window_at_full_rate(
    shared_data: Path, face_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the budget of measured frames the span is cut, not thinned below 10 fps: with 60
    frames for the clip, 60 x 2 frames (4.8 s) are measured and hold the first blink only."""
    from forenscope.video import blinks

    monkeypatch.setattr(blinks, "MAX_FRAMES", 60)
    path = blinking_clip(tmp_path / "long.mp4", face_still(shared_data), 8, [50, 150], 25)
    blink = blink_of(path)
    assert blink.sampled_fps == 12.5 and blink.frames == list(range(0, 120, 2))
    assert blink.blinks == 1 and blink.blink_spans[0][0] >= 50
    assert "measured over frames 0-119 (4.8 s) of the track's" in blink.note
