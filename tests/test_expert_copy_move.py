"""Copy-move expert: finds the duplicated pair (source and pasted target) of `make_copy_move`.

The expert cannot tell the copy from the original, so it marks both. `make_copy_move`'s mask
covers only the pasted target; the acceptance IoU (>= 0.5 at threshold 0.5) is therefore taken
against the UNION of source and target boxes. Target-only IoU is then bounded by about 0.5 (the
map is twice the target) and is checked separately to be close to that bound. The shifts are
JPEG q95 (the maker's default) and the grid offsets are not multiples of 8.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from forenscope.eval.datasets import load_manifest, load_mask
from forenscope.eval.metrics import scores_at
from forenscope.experts import get_expert
from forenscope.experts.copy_move import (
    CELL,
    MAX_DETAIL_RATIO,
    MAX_RATIO,
    MIN_TEXTURE,
    Signals,
    lattice_basis,
    on_lattice,
    shifted,
    window_crop,
    window_ratio,
)
from forenscope.forgeries import (
    Box,
    encode,
    example_photo,
    make_copy_move,
    mask_iou,
    synthetic_photo,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput

# Example photo: a textured copy (dandelion head -> grass, lower right) and a copy of smooth,
# out-of-focus background (the bokeh). Synthetic: two positions with different shifts.
CASES = {
    "example-textured": ("example", Box(120, 150, 160, 140), (700, 482)),
    "example-smooth": ("example", Box(500, 500, 150, 120), (803, 550)),
    "synthetic-a": ("synthetic", Box(60, 60, 150, 120), (381, 300)),
    "synthetic-b": ("synthetic", Box(400, 40, 160, 160), (100, 283)),
}


def _base(name: str) -> np.ndarray:
    return example_photo() if name == "example" else synthetic_photo()


def test_spec() -> None:
    spec = get_expert("copy_move").spec
    assert (spec.kind, spec.targets, spec.produces_heatmap) == ("signal", "tampered", True)
    assert spec.requires == []  # numpy/scipy only
    assert spec.reference and "Fridrich" in spec.reference


@pytest.mark.parametrize("case", list(CASES))
def test_localises_source_and_target(case: str) -> None:
    base_name, source, target_xy = CASES[case]
    forgery = make_copy_move(_base(base_name), source, target_xy)
    result = get_expert("copy_move").analyze(load_image(forgery.data))
    assert result.heatmap is not None and result.heatmap.shape == forgery.mask.shape
    pred = result.heatmap >= 0.5
    source_mask = np.zeros_like(forgery.mask)
    source_mask[source.slices()] = True
    assert mask_iou(pred, forgery.mask | source_mask) >= 0.5
    assert mask_iou(pred, forgery.mask) >= 0.4  # the target alone, out of at most ~0.5
    assert result.score is not None and result.score >= 0.5
    # The evidence names the shift vector (up to sign) and both boxes.
    dy, dx = target_xy[1] - source.y, target_xy[0] - source.x
    pair = result.details["pairs"][0]
    assert tuple(pair["shift_dy_dx"]) in {(dy, dx), (-dy, -dx)}
    ev = [e for e in result.evidence if e.kind == "copy_move.pair"]
    assert ev and ev[0].bbox is not None and f"dx={pair['shift_dy_dx'][1]}" in ev[0].summary


@pytest.mark.parametrize("name", ["example", "synthetic"])
def test_untouched_images_stay_quiet(name: str) -> None:
    result = get_expert("copy_move").analyze(load_image(encode(_base(name), quality=92)))
    assert result.score == 0.0
    assert result.heatmap is not None and float((result.heatmap >= 0.5).mean()) == 0.0
    assert result.evidence[0].kind == "copy_move.none"


def test_copy_with_changed_brightness_and_contrast_is_found() -> None:
    # COVERAGE-style "illumination" copy-move: the pasted copy is darker and flatter.
    base = synthetic_photo()
    source, (tx, ty) = Box(60, 60, 150, 120), (381, 300)
    out = base.astype(np.float32)
    out[ty : ty + 120, tx : tx + 150] = base[source.slices()] * 0.8 + 10
    rgb = np.clip(out, 0, 255).astype(np.uint8)
    truth = np.zeros(rgb.shape[:2], bool)
    truth[source.slices()] = True
    truth[ty : ty + 120, tx : tx + 150] = True
    result = get_expert("copy_move").analyze(load_image(encode(rgb, quality=95)))
    assert result.heatmap is not None
    assert mask_iou(result.heatmap >= 0.5, truth) >= 0.5


def test_periodic_texture_is_not_a_copy() -> None:
    # A tiled texture matches itself at its period; that must not be reported as a copy-move.
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    rgb = np.tile(tile, (10, 12, 1))
    result = get_expert("copy_move").analyze(load_image(encode(rgb, "PNG")))
    assert result.score == 0.0
    assert result.details["rejected_candidates"] >= 1


def _facade(seed: int, period: tuple[int, int], h: int = 480, w: int = 640) -> np.ndarray:
    """A facade-like texture: a wall with a grid of windows (each with a mullion cross and its
    own tone and glass texture), sensor noise; nothing in it is an exact copy."""
    rng = np.random.default_rng(seed)
    wall = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 2) * 25
    img = 150 + 20 * np.sin(np.arange(w) / w * 2.0)[None, :] + wall
    py, px = period
    wy, wx = int(py * 0.55), int(px * 0.5)
    for y in range(20, h - py, py):
        for x in range(16, w - px, px):
            glass = ndimage.gaussian_filter(rng.normal(0, 1, (wy, wx)), 1.5) * 20
            img[y : y + wy, x : x + wx] = 60 + rng.normal(0, 6) + glass
            img[y + wy // 2, x : x + wx] = 160
            img[y : y + wy, x + wx // 2] = 160
    img = img + rng.normal(0, 2, img.shape)
    rgb = np.clip(img, 0, 255)[..., None] * np.array([1.0, 0.95, 0.85])
    return np.asarray(np.clip(rgb, 0, 255), dtype=np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_facade_texture_is_not_a_copy(seed: int) -> None:
    # copy_move 0.1.0 reported these (score 1.0, shifts of 7-11 window periods): each window
    # matches the one N periods away as well as its neighbours, so it is texture.
    rgb = _facade(seed, (56, 40))
    result = get_expert("copy_move").analyze(load_image(encode(rgb, quality=90)))
    assert result.score == 0.0
    assert result.heatmap is not None and float((result.heatmap >= 0.5).mean()) == 0.0
    assert not [e for e in result.evidence if e.kind == "copy_move.pair"]
    assert result.details["rejected_candidates"] >= 1


@pytest.mark.parametrize("seed", [0, 1])
def test_copy_in_a_photo_with_a_facade_is_found(seed: int) -> None:
    # The facade's repeats fill the strongest self-similarity peaks; the copy of a natural
    # patch (below it) must still be verified and described.
    base = synthetic_photo(seed=seed + 10)
    base[:260] = _facade(seed, (54, 38))[:260]
    source, target_xy = Box(60, 300, 120, 110), (420, 340)
    forgery = make_copy_move(base, source, target_xy, quality=90)
    result = get_expert("copy_move").analyze(load_image(forgery.data))
    assert result.score is not None and result.score >= 0.5
    pair = result.details["pairs"][0]
    assert tuple(pair["shift_dy_dx"]) in {(40, 360), (-40, -360)}
    both = forgery.mask.copy()
    both[source.slices()] = True
    assert result.heatmap is not None and mask_iou(result.heatmap >= 0.5, both) >= 0.5
    ev = next(e for e in result.evidence if e.kind == "copy_move.pair")
    # The sentence shows why it is not texture: the copy matches far better than any repeat.
    found = re.search(r"median mismatch ([\d.]+) .* texture is ([\d.]+|no match)", ev.summary)
    assert found, ev.summary
    assert found[2] == "no match" or float(found[2]) >= 2 * float(found[1])


def test_lattice_of_texture_repeats() -> None:
    peaks = [(0, 38), (54, 0), (0, 76), (54, 38), (108, 0), (0, -114), (54, -38), (0, 152)]
    basis = lattice_basis(peaks)
    assert basis is not None
    assert on_lattice((162, -76), basis) and not on_lattice((40, 360), basis)
    # A JPEG's blocking repeats every 8 px: that is no texture lattice.
    grid = [(0, 8), (8, 0), (0, 16), (16, 0), (8, 8), (16, 8), (8, 16), (0, 24)]
    assert lattice_basis(grid) is None


def _filtered_window_ratio(sig: Signals, shift: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """copy_move 0.3.0's window_ratio (same crop): box-filter the whole crop, then read it at the
    points."""
    dy, dx = shift
    y0, x0, y1, x1 = window_crop(sig.gray.shape, shift, points)
    out = np.full(len(points), np.inf)
    if y1 - y0 < CELL or x1 - x0 < CELL:
        return out
    a, b = (slice(y0, y1), slice(x0, x1)), (slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx))

    def mean(v: np.ndarray) -> np.ndarray:
        return np.asarray(ndimage.uniform_filter(v, CELL))

    ea, eb = mean(sig.hp2[a]), mean(sig.hp2[b])
    grey = mean((sig.gray[a] - sig.gray[b]) ** 2) / (ea + eb + 0.5)
    na, nb = sig.norm[a], sig.norm[b]
    detail = mean((na - nb) ** 2) / (mean(na * na) + mean(nb * nb) + 1e-6)
    ratio = np.where(
        np.minimum(ea, eb) > MIN_TEXTURE,
        np.minimum(grey, detail * (MAX_RATIO / MAX_DETAIL_RATIO)),
        np.inf,
    )
    py, px = points[:, 0] - y0, points[:, 1] - x0
    inside = (py >= 0) & (py < y1 - y0) & (px >= 0) & (px < x1 - x0)
    out[inside] = ratio[py[inside], px[inside]]
    return out


def test_window_ratio_at_points_equals_the_filtered_crop() -> None:
    # The fast path sums each window at its point; the reference filters the whole crop (with
    # uniform_filter's mirrored edges, which windows at the crop's edge reach into).
    rng = np.random.default_rng(3)
    checked = 0
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(40, 160, 2))
        gray = (rng.random((h, w)) * 255).astype(np.float32)
        if trial % 3 == 0:
            gray[: h // 2] = 100.0  # a flat half: those windows are inf in both
        if trial % 4 == 1:
            gray[:, w // 2 :] = gray[:, : w - w // 2]  # a copy: ratios near 0
        sig = Signals.of(gray)
        shift = int(rng.integers(-h + 10, h - 10)), int(rng.integers(-w + 10, w - 10))
        n = int(rng.integers(1, 80))
        points = np.stack([rng.integers(4, h - 4, n), rng.integers(4, w - 4, n)], 1)
        fast, ref = window_ratio(sig, shift, points), _filtered_window_ratio(sig, shift, points)
        assert np.array_equal(np.isinf(fast), np.isinf(ref)), trial
        finite = np.isfinite(ref)
        np.testing.assert_allclose(fast[finite], ref[finite], rtol=2e-6, atol=1e-7)
        checked += int(finite.sum())
    assert checked > 500  # most points are compared, not skipped as inf


def test_shifted_mask_moves_and_crops() -> None:
    m = np.zeros((10, 10), bool)
    m[1:3, 1:3] = True
    out = shifted(m, (5, 7))
    assert out[6:8, 8:10].all() and out.sum() == 4
    assert shifted(m, (-5, 0)).sum() == 0


def test_abstains_on_tiny_and_flat_images() -> None:
    expert = get_expert("copy_move")
    tiny = ImageInput(rgb=np.zeros((40, 40, 3), np.uint8), data=b"", format="PNG", mode="RGB")
    flat = ImageInput(rgb=np.full((200, 300, 3), 200, np.uint8), data=b"", format="PNG", mode="RGB")
    assert expert.analyze(tiny).score is None
    res = expert.analyze(flat)
    assert res.score is None and res.abstain_reason and "textured" in res.abstain_reason


@pytest.mark.data
def test_noso_copy_moves_are_found_and_originals_stay_clean(shared_data: Path) -> None:
    # NoSo: lossless copy-move scenes. Measured: 3 of 5 forged images localised (F1 0.69-0.95,
    # mean 0.50 over 5), no pair on any of the 5 originals.
    expert = get_expert("copy_move")
    manifest = shared_data / "manifest.csv"
    f1 = []
    for s in load_manifest(manifest, source="noso", label="tampered"):
        assert s.mask_file is not None
        result = expert.analyze(load_image(s.file))
        assert result.heatmap is not None
        f1.append(scores_at(result.heatmap, load_mask(s.mask_file)).f1)
    assert sum(v >= 0.3 for v in f1) >= 3
    for s in load_manifest(manifest, source="noso", label="real"):
        assert expert.analyze(load_image(s.file)).score == 0.0, s.path


# Camera photos of fences, fabric, lace, facades and planks that copy_move 0.1.0 reported as
# copies (shifts of 32-46 px along the texture's period).
REPETITIVE_PHOTOS = [
    "Nokia 3110c (Mobile Phone).jpg",
    "Sanyo S1.JPG",
    "Kodak DX6490.jpg",
    "Nikon E995 (iptc).jpg",
    "Canon PowerShot A70.jpg",
]


@pytest.mark.data
def test_repetitive_camera_photos_are_not_copies(shared_data: Path) -> None:
    expert = get_expert("copy_move")
    for name in REPETITIVE_PHOTOS:
        result = expert.analyze(load_image(shared_data / "real/metadata-extractor-images" / name))
        assert result.score == 0.0, name
        assert result.details["rejected_candidates"] >= 1, name
