"""Report maps written strip by strip (issue 15, memory): the same PNG levels, the same
found-nothing notes and the same resized overlays as the whole-map formulas."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from forenscope.map_geometry import resize_map
from forenscope.report import overlays


def _map(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    heat = rng.uniform(-0.2, 1.2, shape).astype(np.float32)
    flat = heat.reshape(-1)
    flat[::97] = np.nan
    flat[5::101] = np.inf
    flat[7::103] = -np.inf
    flat[11::89] = 0.5 / 255  # a level exactly half-way: round half to even
    return heat


def _plain_levels(heatmap: np.ndarray) -> np.ndarray:
    values = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    return np.round(values * 255).astype(np.uint8)


@pytest.mark.parametrize("strip", [1 << 18, 64, 1])
@pytest.mark.parametrize("shape", [(37, 53), (1, 9), (9,), (4, 5, 1), (0, 3)])
def test_map_levels_are_the_whole_map_formula(
    monkeypatch: pytest.MonkeyPatch, strip: int, shape: tuple[int, ...]
) -> None:
    monkeypatch.setattr(overlays, "STRIP_VALUES", strip)
    heat = _map(shape, 1)
    assert np.array_equal(overlays.map_levels(heat), _plain_levels(heat))
    assert np.array_equal(overlays.map_levels(heat.astype(np.float64)), _plain_levels(heat))
    for level in (0.2, 1.0, 2.0):
        expected = bool(np.any(np.nan_to_num(heat.astype(np.float32)) >= level))
        assert overlays.any_at_least(heat, level) == expected


def test_heatmap_png_decodes_to_the_levels() -> None:
    heat = _map((40, 60), 2)
    with Image.open(io.BytesIO(overlays.heatmap_png(heat))) as im:
        assert np.array_equal(np.asarray(im), _plain_levels(heat))


@pytest.mark.parametrize("finite", [True, False])
def test_resize_map_is_unchanged_and_leaves_its_input_alone(finite: bool) -> None:
    heat = _map((50, 70), 3) if not finite else np.clip(_map((50, 70), 3), 0, 1)
    heat = np.nan_to_num(heat) if finite else heat
    before = heat.copy()
    img = Image.fromarray(np.nan_to_num(heat), mode="F")
    expected = np.asarray(img.resize((20, 15), Image.Resampling.BILINEAR), dtype=np.float32)
    assert np.array_equal(resize_map(heat, 15, 20), expected)
    assert np.array_equal(heat, before, equal_nan=True)
    same = resize_map(heat, 50, 70)  # the same size: a cleaned copy, never the input itself
    assert np.array_equal(same, np.nan_to_num(heat)) and not np.shares_memory(same, heat)
