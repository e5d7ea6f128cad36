"""Fused heatmap -> binary mask -> regions described in words.

`localize(heatmap, results=..., threshold=0.5)` thresholds the fused map, cleans the mask
(opening removes specks, closing bridges small gaps, holes are filled), drops connected
components smaller than `min_area_share` of the image, and keeps the `max_regions` components
with the highest mean fused score. Each region is described three ways, as the research asks:
relative position (a 3x3 grid of the bbox centre, or "spanning ..." for large boxes), absolute
position (bbox in pixels and as shares of the image) and size ("small (about 3% of the image)"),
plus the experts whose own maps are high inside it. All of this runs at the working size the
maps are fused at (longer side `map_geometry.WORK_SIDE`); only the final mask is upsampled to the
image, and boxes and areas are given in image pixels.

`normalise_map` is shared with the fusion; `resize_map` lives in `map_geometry`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..map_geometry import resize_map as resize_map  # its importers predate map_geometry
from ..map_geometry import working_size
from ..types import BBox, ExpertResult, Region

BACKGROUND_PERCENTILE = 50.0
"""A map's background level; regions up to about half the image survive normalisation."""

EXPERT_AGREE_LEVEL = 0.4
"""An expert 'agrees' on a region when its normalised map averages at least this inside it."""

_ROWS = ("upper", "middle", "lower")
_COLS = ("left", "centre", "right")
_CELL_NAMES = {
    ("upper", "left"): "upper-left",
    ("upper", "centre"): "top centre",
    ("upper", "right"): "upper-right",
    ("middle", "left"): "middle-left",
    ("middle", "centre"): "centre",
    ("middle", "right"): "middle-right",
    ("lower", "left"): "lower-left",
    ("lower", "centre"): "bottom centre",
    ("lower", "right"): "lower-right",
}
# What a box covering about half the image in both directions spans, by its 3x3 cell.
_SPAN_NAMES = {
    "upper-left": "the upper-left quarter",
    "top centre": "the top half",
    "upper-right": "the upper-right quarter",
    "middle-left": "the left half",
    "centre": "the centre",
    "middle-right": "the right half",
    "lower-left": "the lower-left quarter",
    "bottom centre": "the bottom half",
    "lower-right": "the lower-right quarter",
}


def unit_map(heatmap: np.ndarray) -> np.ndarray:
    """`clip(nan_to_num(heatmap as float32), 0, 1)`, the same values (and zero signs), without
    a copy when the map is already finite and in [0, 1], as expert and fused maps are: the
    four passes of nan_to_num cost more than the rest of a map's normalisation. Read only."""
    arr = np.asarray(heatmap, dtype=np.float32)
    if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:  # NaN fails both tests
        return arr
    return np.clip(np.nan_to_num(arr), 0.0, 1.0)


def normalise_map(heatmap: np.ndarray) -> np.ndarray:
    """Subtract the map's background level and rescale the headroom to [0, 1].

    Not a min-max stretch: a flat or noise-only map stays low, because only values above the
    map's median move, and they move in proportion to the headroom left above the median.
    """
    arr = unit_map(heatmap)
    step = max(1, int(np.sqrt(arr.size / 250_000)))  # a strided sample is enough for a median
    background = float(np.percentile(arr[::step, ::step], BACKGROUND_PERCENTILE))
    if background >= 1.0:
        return np.zeros_like(arr)
    scaled = np.clip((arr - background) / (1.0 - background), 0.0, 1.0)
    return np.asarray(scaled, dtype=np.float32)


def clean_mask(mask: np.ndarray, *, min_area_share: float = 0.001) -> np.ndarray:
    """Opening, closing and hole filling scaled to the image, then drop tiny components."""
    height, width = mask.shape
    radius = max(1, round(min(height, width) / 256))
    size = 2 * radius + 1
    # Opening then closing with a square, as separable min/max filters (fast on 12 MP masks);
    # mode="nearest" keeps regions that touch the image border from being eroded by it.
    grey = np.asarray(mask, dtype=np.uint8)
    opened = ndimage.maximum_filter(
        ndimage.minimum_filter(grey, size, mode="nearest"), size, mode="nearest"
    )
    closed = ndimage.minimum_filter(
        ndimage.maximum_filter(opened, size, mode="nearest"), size, mode="nearest"
    )
    cleaned = ndimage.binary_fill_holes(closed.astype(bool))
    labels, count = ndimage.label(cleaned, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= max(1.0, min_area_share * height * width)
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def localize(
    heatmap: np.ndarray,
    *,
    results: list[ExpertResult],
    threshold: float = 0.5,
    min_area_share: float = 0.001,
    max_regions: int = 8,
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, list[Region]]:
    """Return the cleaned boolean mask (kept regions only) at the image size and the regions,
    best first, with boxes in image pixels.

    `shape` is the image's (height, width), by default the map's. The map is thresholded,
    cleaned and split into regions at the working size (`working_size(shape)`, where the experts
    draw their maps; the map is resized to it when it comes at another size), and only the final
    mask is upsampled (nearest) to the image: cleaning a 12 MP mask cost a second. An image whose
    longer side is at most the working side is localized at full size, as before.
    """
    height, width = shape if shape is not None else heatmap.shape[:2]
    work_h, work_w = working_size(height, width)
    fused = unit_map(resize_map(heatmap, work_h, work_w))
    cleaned = clean_mask(fused >= threshold, min_area_share=min_area_share)
    labels, count = ndimage.label(cleaned, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros((height, width), dtype=bool), []
    index = np.arange(1, count + 1)
    means = np.asarray(ndimage.mean(fused, labels=labels, index=index), dtype=np.float64)
    order = [int(i) for i in index[np.argsort(-means, kind="stable")][:max_regions]]
    expert_maps = _expert_maps(results, work_h, work_w)
    kept = np.zeros(count + 1, dtype=bool)
    kept[order] = True
    # Image rows (columns) each working row (column) paints, and how many of them.
    rows, cols = _nearest_lines(height, work_h), _nearest_lines(width, work_w)
    mask = kept[labels] if (height, width) == (work_h, work_w) else kept[labels][rows][:, cols]
    pixels = np.bincount(
        labels.ravel(),
        weights=np.outer(np.bincount(rows, minlength=work_h), np.bincount(cols, minlength=work_w))
        .ravel()
        .astype(np.float64),
        minlength=count + 1,
    )
    slices = ndimage.find_objects(labels)
    regions = []
    for rank, label in enumerate(order, start=1):
        ys, xs = slices[label - 1]
        y0, y1 = _painted(rows, ys)
        x0, x1 = _painted(cols, xs)
        bbox = BBox(x=x0, y=y0, width=x1 - x0, height=y1 - y0)
        agreeing = _agreeing_experts(expert_maps, labels == label)
        regions.append(
            describe_region(
                rank,
                bbox,
                image_height=height,
                image_width=width,
                area_share=float(pixels[label]) / (height * width),
                mean_score=float(means[label - 1]),
                experts=agreeing,
            )
        )
    return mask, regions


def _nearest_lines(n_image: int, n_work: int) -> np.ndarray:
    """For each of the image's n_image lines, the working line nearest its centre (0..n_work-1);
    the identity when the sizes agree."""
    centres = (np.arange(n_image, dtype=np.float64) + 0.5) * (n_work / n_image)
    return np.minimum(centres.astype(np.intp), n_work - 1)


def _painted(lines: np.ndarray, span: slice) -> tuple[int, int]:
    """[start, stop) of the image lines that working lines span.start..span.stop-1 paint."""
    start = int(np.searchsorted(lines, span.start, side="left"))
    return start, int(np.searchsorted(lines, span.stop - 1, side="right"))


def _expert_maps(results: list[ExpertResult], height: int, width: int) -> dict[str, np.ndarray]:
    return {
        r.expert: resize_map(normalise_map(r.heatmap), height, width)
        for r in results
        if r.judged and r.heatmap is not None
    }


def _agreeing_experts(maps: dict[str, np.ndarray], component: np.ndarray) -> list[str]:
    """Experts whose map is high inside the component and clearly higher than outside it."""
    agreeing: list[tuple[float, str]] = []
    outside = ~component
    for name, emap in maps.items():
        inside_mean = float(emap[component].mean())
        outside_mean = float(emap[outside].mean()) if outside.any() else 0.0
        if inside_mean >= EXPERT_AGREE_LEVEL and inside_mean >= 1.5 * outside_mean:
            agreeing.append((inside_mean, name))
    return [name for _, name in sorted(agreeing, key=lambda t: (-t[0], t[1]))]


def describe_region(
    region_id: int,
    bbox: BBox,
    *,
    image_height: int,
    image_width: int,
    area_share: float,
    mean_score: float,
    experts: list[str],
) -> Region:
    """Build a Region with relative/absolute position, size words and a one-sentence description."""
    rel = (
        bbox.x / image_width,
        bbox.y / image_height,
        bbox.width / image_width,
        bbox.height / image_height,
    )
    position, preposition = position_words(rel)
    size = size_words(area_share)
    where = f"{preposition} {position}" if preposition else position
    flagged = f"flagged by {_join(experts)}" if experts else "no single expert map stands out"
    description = (
        f"Region {region_id}: a {size} area {where} "
        f"(x {bbox.x}-{bbox.x + bbox.width}, y {bbox.y}-{bbox.y + bbox.height} px), "
        f"mean fused score {mean_score:.2f}; {flagged}."
    )
    return Region(
        id=region_id,
        bbox=bbox,
        bbox_relative=tuple(round(v, 4) for v in rel),
        area_share=min(1.0, max(0.0, area_share)),
        relative_position=position,
        size_words=size,
        mean_score=round(mean_score, 4),
        experts=experts,
        description=description,
    )


def position_words(rel: tuple[float, float, float, float]) -> tuple[str, str]:
    """(phrase, preposition) for a relative bbox, e.g. ("upper-left", "in the")."""
    x, y, w, h = rel
    cx, cy = x + w / 2, y + h / 2
    row = _ROWS[min(2, int(cy * 3))]
    col = _COLS[min(2, int(cx * 3))]
    cell = _CELL_NAMES[(row, col)]
    if w >= 0.8 and h >= 0.8:
        return "covering most of the image", ""
    if w >= 0.8:
        band = {"upper": "top", "middle": "middle", "lower": "bottom"}[row]
        return f"spanning the full width across the {band}", ""
    if h >= 0.8:
        side = {"left": "left side", "centre": "centre", "right": "right side"}[col]
        return f"spanning the full height down the {side}", ""
    if w >= 0.45 and h >= 0.45:
        return f"spanning {_SPAN_NAMES[cell]}", ""
    if w >= 0.45:
        return f"a wide band at the {cell}", "forming"
    if h >= 0.45:
        return f"a tall band at the {cell}", "forming"
    return cell, "in the"


def size_words(area_share: float) -> str:
    """'small (about 3% of the image)'; the word follows the share of image pixels."""
    pct = 100.0 * area_share
    if pct < 1:
        word = "tiny"
    elif pct < 5:
        word = "small"
    elif pct < 15:
        word = "medium-sized"
    elif pct < 35:
        word = "large"
    else:
        word = "very large"
    amount = f"{pct:.1f}%" if pct < 1 else f"{round(pct)}%"
    return f"{word} (about {amount} of the image)"


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
