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

from collections.abc import Mapping, Sequence

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
    background = percentile(arr[::step, ::step], BACKGROUND_PERCENTILE)
    if background >= 1.0:
        return np.zeros_like(arr)
    scaled = np.clip((arr - background) / (1.0 - background), 0.0, 1.0)
    return np.asarray(scaled, dtype=np.float32)


def percentile(sample: np.ndarray, q: float) -> float:
    """`float(np.percentile(sample, q))`, the same value, for a sample of a map in [0, 1]
    without NaN (unit_map's): the median of a map that is zero on more than half its pixels
    (most tamper maps of an untouched photo) is 0.0 without the partition, 4x faster."""
    n = sample.size
    # Without a sign bit set (no -0.0) every zero is +0.0 and sorts first: when zeros fill more
    # than half, both order statistics np.percentile interpolates between are +0.0.
    if q == 50.0 and n and n - np.count_nonzero(sample) > n // 2 and not np.signbit(sample).any():
        return 0.0
    return float(np.percentile(sample, q))


def clean_mask(mask: np.ndarray, *, min_area_share: float = 0.001) -> np.ndarray:
    """Opening, closing and hole filling scaled to the image, then drop tiny components."""
    labels, keep = _cleaned_components(mask, min_area_share)
    if labels is None:
        return np.zeros_like(mask, dtype=bool)
    return np.asarray(keep[labels], dtype=bool)


def clean_labels(mask: np.ndarray, *, min_area_share: float = 0.001) -> tuple[np.ndarray, int]:
    """`ndimage.label(clean_mask(mask), structure=EIGHT)`, the same labels and count, without
    labelling twice: dropping whole components neither splits nor merges the others, and labels
    number components in raster order of their first pixel, so the kept ones are renumbered."""
    labels, keep = _cleaned_components(mask, min_area_share)
    if labels is None or not keep.any():
        return np.zeros(mask.shape, dtype=np.int32), 0
    renumber = (np.cumsum(keep) * keep).astype(labels.dtype)
    return renumber[labels], int(keep.sum())


_EIGHT = np.ones((3, 3), dtype=bool)


def _cleaned_components(
    mask: np.ndarray, min_area_share: float
) -> tuple[np.ndarray | None, np.ndarray]:
    """The 8-connected components of the opened, closed and filled mask and which are kept
    (`keep[label]`, label 0 never); (None, empty) when nothing survives the opening."""
    height, width = mask.shape
    radius = max(1, round(min(height, width) / 256))
    size = 2 * radius + 1
    # Opening then closing with a square, as separable min/max filters (fast on 12 MP masks);
    # mode="nearest" keeps regions that touch the image border from being eroded by it.
    # Each step runs on the box around what is set, widened by more than its filters reach:
    # outside it the mask stays False, and inside it the box's edge is False, so the clamped
    # windows and the hole filling see what they would see on the whole mask.
    grey = np.asarray(mask, dtype=np.uint8)
    box = _set_box(grey, size)
    if box is None:
        return None, np.zeros(1, dtype=bool)
    eroded = np.zeros_like(grey)
    eroded[box] = ndimage.minimum_filter(grey[box], size, mode="nearest")
    box = _set_box(eroded, size + 1)  # the closing's dilation reaches size - 1 beyond
    if box is None:  # the opening leaves nothing (the usual untouched photo): all False
        return None, np.zeros(1, dtype=bool)
    # The opening's dilation and the closing's are one max filter twice as wide (a max over a
    # max over clamped windows is the max over the clamped union), exact on integers.
    dilated = ndimage.maximum_filter(eroded[box], 2 * size - 1, mode="nearest")
    closed = ndimage.minimum_filter(dilated, size, mode="nearest")
    box_labels, count = ndimage.label(fill_holes(closed.astype(bool)), structure=_EIGHT)
    # Raster order inside the box is raster order in the mask: the labels are the same.
    labels = np.zeros((height, width), dtype=box_labels.dtype)
    labels[box] = box_labels
    sizes = np.bincount(box_labels.ravel(), minlength=count + 1)
    keep = sizes >= max(1.0, min_area_share * height * width)
    keep[0] = False
    return labels, keep


def _set_box(grey: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of the non-zero pixels widened by `margin` (within the map), or None."""
    rows = np.flatnonzero(grey.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(grey.any(axis=0))
    height, width = grey.shape
    return (
        slice(max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)),
        slice(max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)),
    )


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`ndimage.binary_fill_holes(mask)` of a 2-D boolean mask, the same result, by one
    labelling instead of a dilation iterated to convergence (5x faster at the working size):
    a hole is a 4-connected background component (binary_fill_holes' default structure) that
    touches no edge of the image."""
    background, count = ndimage.label(~mask)  # the default structure is 4-connectivity
    outer = np.zeros(count + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outer[edge] = True
    outer[0] = False  # label 0 is the mask itself
    return np.asarray(~outer[background], dtype=bool)


def localize(
    heatmap: np.ndarray,
    *,
    results: list[ExpertResult],
    threshold: float = 0.5,
    min_area_share: float = 0.001,
    max_regions: int = 8,
    shape: tuple[int, int] | None = None,
    normalised: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[Region]]:
    """Return the cleaned boolean mask (kept regions only) at the image size and the regions,
    best first, with boxes in image pixels.

    `shape` is the image's (height, width), by default the map's. The map is thresholded,
    cleaned and split into regions at the working size (`working_size(shape)`, where the experts
    draw their maps; the map is resized to it when it comes at another size), and only the final
    mask is upsampled (nearest) to the image: cleaning a 12 MP mask cost a second. An image whose
    longer side is at most the working side is localized at full size, as before.
    `normalised` may hold experts' maps already normalised at the working size (as
    `normalised_at` gives them), so that the fusion's work is not done twice.
    """
    height, width = shape if shape is not None else heatmap.shape[:2]
    work_h, work_w = working_size(height, width)
    fused = unit_map(at_size(heatmap, work_h, work_w))
    labels, count = clean_labels(fused >= threshold, min_area_share=min_area_share)
    if count == 0:
        return np.zeros((height, width), dtype=bool), []
    index = np.arange(1, count + 1)
    means = np.asarray(ndimage.mean(fused, labels=labels, index=index), dtype=np.float64)
    order = [int(i) for i in index[np.argsort(-means, kind="stable")][:max_regions]]
    expert_maps = _expert_maps(results, work_h, work_w, normalised or {})
    kept = np.zeros(count + 1, dtype=bool)
    kept[order] = True
    # Image rows (columns) each working row (column) paints, and how many of them.
    rows, cols = _nearest_lines(height, work_h), _nearest_lines(width, work_w)
    mask = kept[labels]
    if (height, width) != (work_h, work_w):  # np.take: 10x faster than fancy indexing here
        mask = np.take(np.take(mask, cols, axis=1), rows, axis=0)
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
        agreeing = _agreeing_experts(expert_maps, labels, label, (ys, xs))
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


def at_size(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """`resize_map(heatmap, height, width)` for a reader that cleans NaN itself (unit_map,
    normalise_map): a 2-D map already at the size is returned as float32 without resize_map's
    copy, since nan_to_num changes nothing those readers keep."""
    arr = np.asarray(heatmap, dtype=np.float32)
    return arr if arr.shape == (height, width) else resize_map(arr, height, width)


def normalised_at(
    results: Sequence[ExpertResult], height: int, width: int
) -> dict[str, np.ndarray]:
    """`normalise_map` of each result's map that is already 2-D at (height, width), by expert.

    For such a map `normalise_map(resize_map(m))` (the fusion's order) and
    `resize_map(normalise_map(m))` (the region experts' order) are the same array, so the
    fusion and `localize` can share it; maps at other sizes are left out."""
    return {
        r.expert: normalise_map(r.heatmap)
        for r in results
        if r.heatmap is not None and np.shape(r.heatmap) == (height, width)
    }


def _expert_maps(
    results: list[ExpertResult], height: int, width: int, normalised: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    maps = {}
    for r in results:
        if r.judged and r.heatmap is not None:
            done = normalised.get(r.expert)
            maps[r.expert] = (
                done if done is not None else resize_map(normalise_map(r.heatmap), height, width)
            )
    return maps


def _agreeing_experts(
    maps: dict[str, np.ndarray],
    labels: np.ndarray,
    label: int,
    box: tuple[slice, slice],
) -> list[str]:
    """Experts whose map is high inside component `label` and clearly higher than outside it.

    The inside mean is taken over the component's box (the same values in the same order as
    over the whole map, so the same float32 mean), and the outside mean, a whole-map pass, only
    for an expert already high inside."""
    agreeing: list[tuple[float, str]] = []
    inside = labels[box] == label
    outside: np.ndarray | None = None
    for name, emap in maps.items():
        inside_mean = float(emap[box][inside].mean())
        if inside_mean < EXPERT_AGREE_LEVEL:
            continue
        if outside is None:
            outside = labels != label
        outside_mean = float(emap[outside].mean()) if outside.any() else 0.0
        if inside_mean >= 1.5 * outside_mean:
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
