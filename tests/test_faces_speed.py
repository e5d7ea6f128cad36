"""Face detection shortcuts (issue 15): Pillow crops give the letterboxes the array slices gave,
and the face experts of one image share one detection."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from forenscope.experts import face_common
from forenscope.faces import blazeface
from forenscope.faces import detect as detect_mod
from forenscope.io.input import ImageInput


@pytest.mark.parametrize("size", [128, 192])
def test_letterbox_of_a_pillow_crop_is_the_array_slices(size: int) -> None:
    rng = np.random.default_rng(size)
    rgb = rng.integers(0, 256, (700, 1100, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    for y0, x0, side in [(0, 0, 700), (100, 300, 400), (350, 900, 400)]:
        tile = rgb[y0 : y0 + side, x0 : x0 + side]
        crop = img.crop((x0, y0, min(x0 + side, 1100), min(y0 + side, 700)))
        want, got = blazeface.letterbox(tile, size), blazeface.letterbox(crop, size)
        assert np.array_equal(want[0], got[0]) and want[1:] == got[1:]


def test_face_experts_share_one_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []

    def fake_detect(
        rgb: np.ndarray, backend: str = "auto", *, memo: bool = True
    ) -> list[detect_mod.Face]:
        assert not memo  # the per-image memo replaces the pixel hash
        calls.append(rgb.shape)
        return []

    monkeypatch.setattr(detect_mod, "backend_in_effect", lambda backend="auto": "mediapipe")
    monkeypatch.setattr(detect_mod, "detect_faces", fake_detect)
    rgb = np.zeros((64, 80, 3), np.uint8)
    image = ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB")
    for _ in range(4):
        assert face_common.faces_of(image) == ([], [])
    assert face_common.analyze_faces(image) == ([], None)
    assert calls == [(64, 80, 3)]
    other = ImageInput(rgb=rgb.copy(), data=b"", format="PNG", mode="RGB")
    face_common.faces_of(other)  # another image: detected again
    assert len(calls) == 2
    monkeypatch.setattr(detect_mod, "backend_in_effect", lambda backend="auto": "skimage-lbp")
    face_common.faces_of(image)  # another backend: detected again
    assert len(calls) == 3


def test_detection_without_memo_is_the_memoised_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """`memo=False` neither reads nor fills the pixel-hash memo, and detects the same faces."""
    runs: list[str] = []

    def fake_mediapipe(rgb: np.ndarray, ranges: tuple[str, ...]) -> list[detect_mod.Face]:
        runs.append(",".join(ranges))
        return [detect_mod.Face(np.array([5.0, 6.0, 20.0, 30.0]), 0.9, "fake", {})]

    monkeypatch.setattr(detect_mod, "backend_in_effect", lambda backend="auto": "mediapipe")
    monkeypatch.setattr(detect_mod, "_mediapipe", fake_mediapipe)
    monkeypatch.setattr(detect_mod, "_memo", type(detect_mod._memo)())
    rgb = np.full((40, 50, 3), 7, np.uint8)
    plain = detect_mod.detect_faces(rgb, memo=False)
    assert not detect_mod._memo and len(runs) == 1
    memoised = detect_mod.detect_faces(rgb)
    again = detect_mod.detect_faces(rgb)
    assert len(runs) == 2 and len(detect_mod._memo) == 1  # the second call was a hit
    assert [f.box.tolist() for f in plain] == [f.box.tolist() for f in memoised]
    assert again is memoised


@pytest.mark.parametrize("shape", [(900, 1300), (1700, 1000), (500, 2000), (2000, 600)])
def test_tile_letterboxes_are_each_tiles(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    h, w = shape
    side = max(detect_mod.TILE_MIN, max(h, w) // 4)
    ys, xs = detect_mod._starts(h, side), detect_mod._starts(w, side)
    got = detect_mod._tile_letterboxes(Image.fromarray(rgb), ys, xs, side, 192)
    assert set(got) == {(y, x) for y in ys for x in xs}
    for (y0, x0), (canvas, scale, px, py) in got.items():
        want = blazeface.letterbox(rgb[y0 : y0 + side, x0 : x0 + side], 192)
        assert np.array_equal(canvas, want[0]) and (scale, px, py) == want[1:]


def test_seam_polar_is_the_grid_formula() -> None:
    from forenscope.experts import face_seam

    rng = np.random.default_rng(2)
    t = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    outline = np.stack([300 + 200 * np.cos(t), 260 + 240 * np.sin(t)], 1) + rng.normal(
        0, 3, (36, 2)
    )
    shape, origin = (420, 380), (90, 30)
    c = outline.mean(axis=0)
    d = outline - c
    ang = np.arctan2(d[:, 1], d[:, 0])
    order = np.argsort(ang)
    ang_s = np.concatenate([ang[order] - 2 * np.pi, ang[order], ang[order] + 2 * np.pi])
    rad_s = np.tile(np.hypot(d[order, 0], d[order, 1]), 3)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    px, py = xx + origin[0] - c[0], yy + origin[1] - c[1]
    theta = np.arctan2(py, px)
    rho = np.hypot(px, py) / np.maximum(np.interp(theta, ang_s, rad_s), 1e-6)
    sector = ((theta + np.pi) / (2 * np.pi) * face_seam.SECTORS).astype(int) % face_seam.SECTORS
    got_sector, got_rho = face_seam.polar(outline, shape, origin)
    assert np.array_equal(got_sector, sector) and np.array_equal(got_rho, rho)


def test_consistency_block_sigma_is_the_median_formula() -> None:
    from scipy import ndimage

    from forenscope.experts import face_consistency
    from forenscope.experts._signal_math import MAD_TO_SIGMA
    from forenscope.residual import IMMERKAER

    rng = np.random.default_rng(3)
    channel = np.round(rng.normal(120, 9, (203, 171))).astype(np.float32)
    r = np.abs(ndimage.correlate(channel, IMMERKAER, mode="reflect"))
    b = r[:200, :168].reshape(25, 8, 21, 8).transpose(0, 2, 1, 3).reshape(25, 21, 64)
    want = np.asarray(np.median(b, axis=2) * MAD_TO_SIGMA)
    got = face_consistency.block_sigma(channel)
    assert got.dtype == want.dtype and np.array_equal(got, want)
