"""copy_move above COPY_MOVE_MAX_PIXELS: the search runs on an f x f averaged grey plane and
reports in image pixels (issue 15: 48 MP in 10 s). The threshold is lowered here so that small
test images take that path."""

from __future__ import annotations

import numpy as np
import pytest

from forenscope.experts import copy_move, get_expert
from forenscope.experts import schedule as scheduling
from forenscope.experts._working import COPY_MOVE_MAX_PIXELS, map_shape
from forenscope.forgeries import Box, encode, example_photo, make_copy_move, mask_iou
from forenscope.io import load_image
from forenscope.map_geometry import averaging


@pytest.mark.parametrize(
    ("pixels", "factor"),
    [(1, 1), (24_000_000, 1), (24_000_001, 2), (48_000_000, 2), (96_000_000, 2), (96e6 + 1, 3)],
)
def test_averaging_factor(pixels: float, factor: int) -> None:
    assert averaging(pixels, COPY_MOVE_MAX_PIXELS) == factor


def test_binned_is_the_block_mean() -> None:
    g = np.random.default_rng(3).uniform(0, 255, (41, 37)).astype(np.float32)
    for f in (1, 2, 3):
        h, w = 41 // f, 37 // f
        want = g[: h * f, : w * f].reshape(h, f, w, f).mean(axis=(1, 3))
        got = copy_move.binned(g, f)
        assert got.dtype == np.float32 and got.shape == (h, w)
        assert np.allclose(got, want, rtol=1e-6, atol=1e-4)


def test_copy_is_found_on_the_averaged_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    source, (tx, ty) = Box(120, 150, 160, 140), (700, 482)  # the dandelion head -> grass
    forgery = make_copy_move(example_photo(), source, (tx, ty))
    image = load_image(forgery.data)
    monkeypatch.setattr(copy_move, "COPY_MOVE_MAX_PIXELS", image.width * image.height // 4)
    result = get_expert("copy_move").analyze(image)
    assert result.score is not None and result.score >= 0.5
    # The map keeps the full-size image's working shape and covers source and copy.
    assert result.heatmap is not None
    assert result.heatmap.shape == map_shape((image.height, image.width))
    truth = np.zeros((image.height, image.width), bool)
    truth[source.slices()] = True
    truth[ty : ty + source.height, tx : tx + source.width] = True
    assert mask_iou(result.heatmap >= 0.5, truth) >= 0.5
    # Shift and boxes in image pixels: the shift within one averaged pixel of the true one.
    pair = result.details["pairs"][0]
    dy, dx = pair["shift_dy_dx"]
    true_dy, true_dx = ty - source.y, tx - source.x
    assert min(abs(dy - true_dy) + abs(dx - true_dx), abs(dy + true_dy) + abs(dx + true_dx)) <= 4
    assert dy % 2 == 0 and dx % 2 == 0
    for box in (pair["a"], pair["b"]):
        assert box["x"] + box["width"] <= image.width and box["y"] + box["height"] <= image.height
    kinds = {e.kind: e for e in result.evidence}
    assert result.evidence[-1].kind == "copy_move.scale"  # the caveat after the findings
    assert kinds["copy_move.scale"].value == 2 and result.details["averaged_over_px"] == 2
    assert "16x16 px" in kinds["copy_move.pair"].summary  # blocks of 2 x CELL image pixels


def test_untouched_photo_stays_quiet_on_the_averaged_plane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = load_image(encode(example_photo(), quality=92))
    monkeypatch.setattr(copy_move, "COPY_MOVE_MAX_PIXELS", image.width * image.height // 4)
    result = get_expert("copy_move").analyze(image)
    assert result.score == 0.0
    assert result.heatmap is not None and not (result.heatmap >= 0.5).any()
    assert [e.kind for e in result.evidence] == ["copy_move.none", "copy_move.scale"]
    assert "16x16 blocks" in result.evidence[0].summary


def test_schedule_counts_the_averaged_pixels_for_time_only() -> None:
    # Above 24 MP copy_move's time is that of the 2x2-averaged image; its memory estimate stays
    # per decoded pixel, so the dispatcher keeps it apart from the heavy experts at 48 MP.
    assert scheduling.estimated_cost("copy_move", "signal", 48.0) == pytest.approx(
        scheduling.estimated_cost("copy_move", "signal", 12.0)
    )
    assert scheduling.estimated_cost("copy_move", "signal", 24.0) > (
        scheduling.estimated_cost("copy_move", "signal", 12.0)
    )
    per_px = scheduling.PROFILES["copy_move"].bytes_per_pixel
    assert scheduling.memory_estimate("copy_move", "signal", 48_000_000) == per_px * 48e6
