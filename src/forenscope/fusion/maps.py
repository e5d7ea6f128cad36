"""Expert maps -> one fused tamper map (the hand-set weighted mean, or the fitted per-pixel
model of `map_fitted`), and the shape test that decides "local" vs "global" scope."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from ..map_geometry import working_size
from ..types import ExpertResult
from .expert_weights import TAMPER_TARGETS, expert_weight
from .localize import at_size, clean_mask, normalise_map, normalised_at, resize_map, unit_map


def compact_region_dominates(
    heatmap: np.ndarray, *, threshold: float = 0.5, max_area_share: float = 0.5
) -> bool:
    """True when one connected hot component holds most of the map's mass and is not huge."""
    fused = _shrink_unit(heatmap, *working_size(heatmap.shape[0], heatmap.shape[1], max_side=512))
    total = float(fused.sum())
    if total <= 0:
        return False
    labels, count = ndimage.label(clean_mask(fused >= threshold))
    if count == 0:
        return False
    index = np.arange(1, count + 1)
    masses = np.asarray(ndimage.sum(fused, labels=labels, index=index))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    best = int(np.argmax(masses))
    return bool(masses[best] >= 0.5 * total and areas[best] <= max_area_share * fused.size)


def _shrink_unit(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """`resize_map(clip(nan_to_num(heatmap), 0, 1), height, width)`, the same values, without
    full-size passes when the map is already finite and in [0, 1] (the fused map is): at
    12 MP they cost more than the rest of the shape test."""
    arr = unit_map(heatmap)
    if arr.ndim != 2:
        return resize_map(arr, height, width)
    if arr.shape == (height, width):
        return arr
    img = Image.fromarray(np.ascontiguousarray(arr), mode="F")  # as resize_map does
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def fuse_heatmaps(
    judged: list[ExpertResult], *, height: int, width: int, mode: str | None = None
) -> np.ndarray | None:
    """The fused tamper map at (height, width), or None when no tamper expert drew a map: the
    working-size map of `fused_work_map` resized once to the image."""
    work = fused_work_map(judged, height=height, width=width, mode=mode)
    return None if work is None else to_image_size(work, height, width)


def to_image_size(work: np.ndarray, height: int, width: int) -> np.ndarray:
    """A fused working-size map resized to the image, float32 in [0, 1]."""
    resized = resize_map(work, height, width)
    if resized is work:  # the same size: resize_map gave a copy anyway, but be sure
        resized = resized.copy()
    return np.clip(resized, 0.0, 1.0, out=resized)  # in place: resize_map's array is new


def tamper_maps(judged: list[ExpertResult]) -> list[ExpertResult]:
    """The results whose maps the hand-set fused map combines."""
    return [
        r
        for r in judged
        if r.heatmap is not None and r.score is not None and r.targets in TAMPER_TARGETS
    ]


def shared_normalised(judged: list[ExpertResult], height: int, width: int) -> dict[str, np.ndarray]:
    """The tamper maps already at the working size of (height, width), normalised once for both
    `fused_work_map` (hand-set mode) and `localize` (see `localize.normalised_at`)."""
    return normalised_at(tamper_maps(judged), *working_size(height, width))


def fused_work_map(
    judged: list[ExpertResult],
    *,
    height: int,
    width: int,
    mode: str | None = None,
    normalised: dict[str, np.ndarray] | None = None,
) -> np.ndarray | None:
    """The fused tamper map of an image of (height, width) at its working size, or None when
    no tamper expert drew a map.

    `mode` "handset" (the default) is the weighted mean of step 5; "fitted" (opt-in with
    `FORENSCOPE_MAP_FUSION=fitted`, see `map_fusion.map_mode`) is P(pixel forged) from the
    shipped per-pixel logistic model, whose 0.5 is set under a false-alarm budget on untouched
    photos; it falls back to "handset" when the weights are absent or none of the model's
    experts drew a map. The working size is `working_size(height, width)` for "handset" and
    the model's `map_side` for "fitted". `normalised` (`shared_normalised`) may hold maps
    already normalised at the hand-set working size.
    """
    from . import map_fitted as map_fusion

    mode = mode or map_fusion.map_mode()
    model = map_fusion.load_model() if mode == "fitted" else None
    if model is not None:
        inputs = map_fusion.inputs_from_results(judged, TAMPER_TARGETS)
        if any(m.expert in model.experts for m in inputs):
            shape = working_size(height, width, model.map_side)
            normalised = map_fusion.normalised_maps(inputs, shape)
            handset = handset_map(judged, shape, normalised)
            assert handset is not None  # `inputs` is not empty
            return map_fusion.fitted_work_map(inputs, handset, normalised, model=model)
    return handset_map(judged, working_size(height, width), normalised)


def handset_map(
    judged: list[ExpertResult],
    shape: tuple[int, int],
    normalised: dict[str, np.ndarray] | None = None,
) -> np.ndarray | None:
    """Weighted mean of the normalised tamper maps at `shape`, scaled by how suspicious the
    experts are (step 5). `normalised` may hold maps already normalised at `shape`, by expert.

    Maps are combined at a working resolution (longer side `map_geometry.WORK_SIDE` by default)
    and the caller resizes the result once to the image size: the maps are smooth, and 12 MP
    images stay fast.
    """
    work_h, work_w = shape
    maps: list[tuple[float, float, np.ndarray]] = []
    for r in tamper_maps(judged):
        assert r.score is not None and r.heatmap is not None  # tamper_maps
        weight = expert_weight(r.expert) * r.confidence * r.score**2
        done = (normalised or {}).get(r.expert)
        # normalise_map cleans NaN itself: resize_map's copy of a map at the size is not needed
        norm = done if done is not None else normalise_map(at_size(r.heatmap, work_h, work_w))
        maps.append((weight, r.score, norm))
    if not maps:
        return None
    total = sum(w for w, _, _ in maps)
    if total <= 0:
        return np.zeros((work_h, work_w), dtype=np.float32)
    fused = sum((w * m for w, _, m in maps), start=np.zeros((work_h, work_w), np.float32))
    mean_score = sum(w * s for w, s, _ in maps) / total
    gain = min(1.0, mean_score / 0.5)
    return np.asarray(np.clip(fused * (gain / total), 0.0, 1.0), dtype=np.float32)
