"""JPEG traces: quality from the tables, the 8x8 grid, and a block map of double compression.

Each check is a published method reduced to numpy:
- quality: the luma quantisation table compared with the IJG tables at every quality;
- grid: the 8x8 blocking grid found from the pixels (a grid not at (0, 0) means the image was
  cropped after an earlier JPEG save; a PNG with a grid was once a JPEG);
- double compression map, on 8x8 blocks: the JPEG ghost (Farid 2009) on the dominant grid finds
  regions that were saved earlier at a lower quality (aligned double JPEG), and local blocking on
  a second grid (after Li, Yuan & Yu 2009, block artifact grid), confirmed by a JPEG ghost on
  that grid, finds pasted patches whose old grid is not aligned with the image's (non-aligned
  double JPEG), and the quantisation lattice of the DCT coefficients (after Lin et al. 2009,
  BPPM) finds blocks that did not share the image's earlier compression (a splice into a
  double-saved JPEG, or into a once-JPEG PNG/TIFF).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ..io.input import ImageInput
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from . import _jpeg_math as jm
from ._working import paint_blocks
from .base import Expert
from .registry import register_expert

MIN_SIDE = 64
# Grid contrast: never-compressed synthetic images ~0.04, uncompressed camera TIFFs (Columbia,
# COVERAGE) up to ~0.22, one JPEG save at quality <= 95 above ~0.25.
GRID_MIN_STRENGTH = 0.25
INFORMATIVE_MSE = 0.5  # blocks whose re-save error never exceeds this are too flat to judge
GHOST_MAX_ERROR_RATIO = 0.5  # ghost blocks must re-save at q1 with < half the others' error
GHOST_DIP = 0.7  # a ghost dip: error at q1 below 0.7x the error at the next quality
# 99th-percentile z of off-grid blocking excess: 2.8-12 in untouched or aligned-ghost photos
# (kodak, bsds, wallpapers at q85-95), so the shifted ghost below has the last word.
NA_Z_GATE = 3.5
NA_MIN_QUALITY = 85  # an earlier misaligned grid survives only a high-quality final save
NA_GHOST_QUALITIES = (45, 55, 65, 75)
NA_GHOST_MAX_SIDE = 320  # px of the area re-saved to confirm a second grid
# Re-save error on the second grid / on the main grid: >= 0.59 in 210 negatives, 0.19-0.48
# for patches saved at q55 and pasted 2+ px off the grid.
NA_GHOST_RATIO = 0.55
DQ_MIN_FREQUENCIES = 3  # periodic DCT histograms needed to call a quantisation lattice real
DQ_BIAS = 1.0  # log prior odds against "tampered" for a block: no evidence stays cold


@dataclass
class _MapPart:
    blocks: np.ndarray  # per-block heat in [0, 1] on the part's own block grid
    strength: float  # 0..1, how clearly this part shows a localized inconsistency
    detail: dict[str, float | int | str]


def quantization_tables(image: ImageInput) -> dict[int, list[int]] | None:
    """The file's quantisation tables (natural order); read from the bytes if io did not."""
    if image.quantization:
        return image.quantization
    if not image.is_jpeg:
        return None
    try:
        with Image.open(io.BytesIO(image.data)) as im:
            tables = getattr(im, "quantization", None)
    except Exception:  # unreadable header: treat as unknown, the pixels still speak
        return None
    return {int(k): list(v) for k, v in tables.items()} if tables else None


def aligned_ghost(gray: np.ndarray, phase: tuple[int, int], q_final: int | None) -> _MapPart:
    """Farid's JPEG ghost per block: a dip of the re-save error at one quality below the rest.

    Errors are min-max normalised per block over the tried qualities, which cancels texture; a
    block saved earlier at quality q1 has a normalised error near 0 at q1 while single-saved
    blocks decrease steadily with quality. The quality whose map is most localized wins.
    """
    top = 95 if q_final is None else min(95, q_final - 5)
    qualities = list(range(40, top + 1, 5))
    if len(qualities) < 3:
        return _MapPart(np.zeros((1, 1)), 0.0, {})
    # Variance of the difference, not its mean square: the DC rounding of smooth blocks jumps
    # with each quality's DC step and would fake ghosts.
    err = _resave_block_var(gray, qualities, phase)
    lo, hi = err.min(axis=0), err.max(axis=0)
    norm = err - lo
    norm /= np.maximum(hi - lo, 1e-6)  # in place: the same quotients, one map fewer
    informative = hi > INFORMATIVE_MSE
    best: tuple[float, int, np.ndarray] | None = None
    for i, q in enumerate(qualities[:-1]):  # the top quality is a dip for every block
        # A ghost is a dip: lower error than at the next higher quality (flat or clipped
        # blocks with zero error everywhere are not).
        dip = informative & (err[i] < GHOST_DIP * err[i + 1])
        m = jm.smooth_blocks(np.where(dip, 1.0 - norm[i], 0.0))
        contrast = jm.percentile_minus_median(m, 97)
        if best is None or contrast > best[0]:
            best = (contrast, q, m)
    assert best is not None
    contrast, q1, m = best
    gate = float(np.clip((contrast - 0.25) / 0.2, 0.0, 1.0))
    hot = m >= 0.5
    i1 = qualities.index(q1)
    inside = jm.median(err[i1][hot]) if hot.any() else 0.0
    rest = jm.median(err[i1][~hot & informative]) if (~hot & informative).any() else 0.0
    ratio = inside / max(rest, 1e-6) if hot.any() and (~hot & informative).any() else 1.0
    # A real ghost re-saves with much less error than the rest at q1; otherwise the dip is
    # only the normalisation of a block that is hard to compress at every quality.
    gate *= float(ratio < GHOST_MAX_ERROR_RATIO)
    return _MapPart(
        m * gate,
        float(np.clip((contrast - 0.25) / 0.4, 0.0, 1.0)) * gate,
        {
            "ghost_quality": q1,
            "ghost_contrast": round(contrast, 3),
            "ghost_error_ratio": ratio,
            "ghost_error_inside": round(inside, 3),
            "ghost_error_rest": round(rest, 3),
        },
    )


# Rows of the image re-saved at a time (a multiple of 8).
RESAVE_STRIP_ROWS = 256


def _to_uint8(gray: np.ndarray) -> np.ndarray:
    """The grey levels a JPEG re-save encodes: rounded and clipped to uint8."""
    return np.clip(np.round(gray), 0, 255).astype(np.uint8)


def _resave_block_var(gray: np.ndarray, qualities: list[int], phase: tuple[int, int]) -> np.ndarray:
    """(qualities, rows, cols) variance per block (grid at `phase`) of the change made by a
    libjpeg re-save at each quality: `block_var(recompress(g8, q, phase) - gray, phase)` with
    `g8 = _to_uint8(gray)`.

    Computed in strips of whole block rows: a grayscale JPEG codes each 8x8 block on its own (the
    DC prediction between blocks is lossless), so a block-aligned strip re-saves to the same
    pixels as in the whole re-save (tested), and no image-sized copy is made. Each strip is
    re-saved at every quality while the grey levels are in the CPU cache.
    """
    ref, bh, bw = jm._block_grid(gray, phase)
    err = np.empty((len(qualities), bh, bw), np.float32)
    # float32, or the wider type of `gray`, as the subtraction from the float32 re-save gives.
    step = jm.strip_rows(bw * 8)
    buf = np.empty((step, bw * 8), np.result_type(np.float32, gray.dtype))
    for y in range(0, bh * 8, RESAVE_STRIP_ROWS):
        src = _to_uint8(ref[y : y + RESAVE_STRIP_ROWS])
        for i, q in enumerate(qualities):
            decoded = jm.recompress(src, q, uint8=True)
            # The variance of each small strip of the change while it is in the CPU cache.
            for s in range(0, len(src), step):
                change = buf[: len(decoded[s : s + step])]
                change[...] = decoded[s : s + step]
                change -= ref[y + s : y + s + len(change)]
                err[i, (y + s) // 8 : (y + s + len(change)) // 8] = jm.block_var(change)
    return err


def _resave_squared_error(gray: np.ndarray, quality: int, phase: tuple[int, int]) -> np.ndarray:
    """`block_mean((recompress(g8, quality, phase) - gray) ** 2)` on the (0, 0) block grid, with
    `g8 = _to_uint8(gray)`: the re-save is made in strips of whole block rows of its own grid
    (the last strip reaches the image's bottom, so partial edge blocks are padded as in one
    re-save), into one uint8 image; no image-sized float copy is made."""
    dy, dx = phase
    resaved = np.empty(gray.shape, np.uint8)
    step = jm.strip_rows(gray.shape[1])
    for y in range(0, gray.shape[0], step):
        resaved[y : y + step] = _to_uint8(gray[y : y + step])
    for y in range(dy, gray.shape[0], RESAVE_STRIP_ROWS):
        rows = slice(y, y + RESAVE_STRIP_ROWS)
        resaved[rows, dx:] = jm.recompress(resaved[rows, dx:], quality, uint8=True)
    g, bh, bw = jm._block_grid(gray, (0, 0))
    out = np.empty((bh, bw), np.float32)
    dtype = np.result_type(np.float32, gray.dtype)  # as the float32 re-save minus `gray`
    for y in range(0, bh * 8, step):
        change = np.subtract(resaved[y : y + step, : bw * 8], g[y : y + step], dtype=dtype)
        out[y // 8 : (y + step) // 8] = jm.block_mean(np.square(change))
    return out


def _near(a: int, b: int) -> bool:
    return (a - b) % 8 in (0, 1, 7)


def nonaligned_grid(gray: np.ndarray, phase: tuple[int, int]) -> _MapPart:
    """Blocks whose blocking follows a second 8x8 grid: a patch pasted off the image's grid.

    Each axis is scored by its blocking beyond what the dominant grid explains
    (`off_grid_excess`), so an area saved earlier on the *same* grid (a JPEG ghost) does not
    pass for a second grid: its extra blocking on the dominant phase, and the mirror-symmetric
    echo of it on the other phases, cancel out. For every candidate grid (row phase, column
    phase) at least 2 px off the dominant one on some axis, the local excess is z-scored against
    the whole image; the most localized candidate wins. An axis on the dominant phase adds
    nothing, so a patch misaligned on one axis only is judged on that axis.
    """
    er, ec = (
        jm.off_grid_excess(p, own)
        for p, own in zip(jm.local_grid_profiles(gray), phase, strict=True)
    )

    def top_phases(e: np.ndarray, own: int) -> list[int]:
        # One pixel off the main grid is where a strong main grid leaks its own blocking in
        # texture, so such small misalignments are not judged: an axis is on the grid or >= 2
        # px off it.
        far = [k for k in range(8) if not _near(k, own)]
        tail = {k: jm.robust_z_percentile(e[..., k], 99) for k in far}
        others = sorted(far, key=lambda k: -tail[k])
        return [own, *others[:3]]

    best: tuple[float, tuple[int, int]] | None = None
    for r in top_phases(er, phase[0]):
        for c in top_phases(ec, phase[1]):
            if (r, c) == phase:
                continue
            # Candidates are ranked on a cheap mean filter; only the winner is median-filtered.
            mean3 = ndimage.uniform_filter(er[..., r] + ec[..., c], 3, mode="nearest")
            tail = jm.robust_z_percentile(mean3, 99)
            if best is None or tail > best[0]:
                best = (tail, (r, c))
    assert best is not None
    grid = best[1]
    z = jm.robust_z(jm.smooth_blocks(er[..., grid[0]] + ec[..., grid[1]]))
    tail = float(np.percentile(np.sort(z, axis=None), 99))  # sorted: numpy's fast path
    heat = np.clip((z - 1.0) / 4.0, 0.0, 1.0)
    detail: dict[str, float | int | str] = {
        "second_grid_row": grid[0], "second_grid_col": grid[1], "second_grid_z99": tail,
    }  # fmt: skip
    box = jm.hot_bbox_blocks(heat, gray.shape)
    if tail < NA_Z_GATE or box is None:
        return _MapPart(np.zeros_like(heat), 0.0, detail)
    # Blocking alone can come from texture; an earlier save on that grid also leaves a ghost.
    ratio, q1 = shifted_ghost(gray, box, grid, phase)
    detail |= {"second_grid_ghost_ratio": round(ratio, 3), "second_grid_ghost_quality": q1}
    gate = float(np.clip((tail - NA_Z_GATE) / 0.6, 0.0, 1.0)) * float(ratio < NA_GHOST_RATIO)
    if gate > 0:  # the ghost also outlines the patch better than the noisy blocking does
        heat = shifted_ghost_map(gray, grid, phase, q1)
        # The evidence names the area of this map: measure the ratio there.
        box = jm.hot_bbox_blocks(heat, gray.shape)
        if box is not None:
            detail["second_grid_ghost_ratio"] = round(
                shifted_ghost(gray, box, grid, phase, (q1,))[0], 3
            )
    return _MapPart(heat * gate, float(np.clip((tail - NA_Z_GATE) / 2.5, 0.0, 1.0)) * gate, detail)


def shifted_ghost_map(
    gray: np.ndarray, grid: tuple[int, int], main: tuple[int, int], quality: int
) -> np.ndarray:
    """Per block (on the (0, 0) block grid) heat of `shifted_ghost`'s error ratio."""
    err = [_resave_squared_error(gray, quality, p) for p in (grid, main)]
    ratio = jm.smooth_blocks(err[0] / np.maximum(err[1], 1e-3))
    informative = jm.smooth_blocks(err[1]) > INFORMATIVE_MSE
    return np.asarray(np.clip((0.8 - ratio) / 0.4, 0.0, 1.0) * informative)


def shifted_ghost(
    gray: np.ndarray,
    box: tuple[int, int, int, int],
    grid: tuple[int, int],
    main: tuple[int, int],
    qualities: tuple[int, ...] = NA_GHOST_QUALITIES,
) -> tuple[float, int]:
    """Farid's ghost on a second grid: (lowest error ratio, its quality) of re-saving the area in
    `box` on `grid` versus on the image's own grid. An area saved earlier on `grid` at quality q
    re-saves at q on that grid with far less error; texture blocking that only looks like a grid
    does not."""
    x, y, w, h = box
    if min(w, h) < 32:  # too few whole blocks once the copied borders are left out
        return float("inf"), 0
    # The centre of a large area says as much as all of it, at a fixed cost.
    x, y = x + max(w - NA_GHOST_MAX_SIDE, 0) // 2, y + max(h - NA_GHOST_MAX_SIDE, 0) // 2
    w, h = min(w, NA_GHOST_MAX_SIDE), min(h, NA_GHOST_MAX_SIDE)
    crop = np.clip(np.round(gray[y : y + h, x : x + w]), 0, 255).astype(np.uint8)
    ref = crop.astype(np.float32)[8:-8, 8:-8]  # the crop's borders are copied, not re-saved
    best = (float("inf"), 0)
    for q in qualities:
        err = []
        for r, c in (grid, main):
            out = jm.recompress(crop, q, ((r - y) % 8, (c - x) % 8))[8:-8, 8:-8]
            err.append(float(np.mean((out - ref) ** 2)))
        ratio = err[0] / max(err[1], 1e-6)
        best = min(best, (ratio, q))
    return best


def dq_map(
    gray: np.ndarray, phases: list[tuple[int, int]], table: list[int] | None
) -> tuple[_MapPart, tuple[int, int]]:
    """Blocks whose DCT coefficients are off the quantisation lattice the rest of the image
    follows (Lin et al. 2009, block posterior probability map).

    In a JPEG file the coefficients are divided by the file's table, so an earlier save shows as
    a lattice of the quantised values; in a PNG/TIFF of a once-JPEG image the pixel-domain
    coefficients sit on multiples of the old table. Pasted blocks with another history do not.
    """
    best: tuple[list[int], tuple[int, int], np.ndarray] | None = None
    for phase in phases:
        # Pixel rounding moves a coefficient by ~0.3 (std), so lattices are exact to 1 bin.
        llr, periods = jm.dq_block_llr_rounded(jm.rounded_ac(gray, phase, table))
        if best is None or len(periods) > len(best[0]):
            best = (periods, phase, llr)
    assert best is not None
    periods, phase, llr = best
    # Clipped pixels (blown-out sky, black shadows) break the lattice whatever the history.
    llr = np.where(_clipped_blocks(gray, phase), 0.0, llr)
    detail: dict[str, float | int | str] = {
        "dq_periodic_frequencies": len(periods),
        "dq_units": "multiples of this file's table" if table is not None else "DCT units",
    }
    if len(periods) < DQ_MIN_FREQUENCIES:
        return _MapPart(np.zeros_like(llr), 0.0, detail), phase
    m = 1.0 / (1.0 + np.exp(-(jm.smooth_blocks(llr) - DQ_BIAS)))
    contrast = jm.percentile_minus_median(m, 97)
    hot = m >= 0.5
    detail |= {
        "dq_steps": ",".join(map(str, periods)),
        "dq_contrast": round(contrast, 3),
        # The numbers behind the contrast: how off-lattice the flagged blocks are vs the rest.
        "dq_inside": round(float(m[hot].mean()), 3) if hot.any() else 0.0,
        "dq_elsewhere": round(jm.median(m[~hot]), 3) if (~hot).any() else 0.0,
    }
    gate = float(np.clip((contrast - 0.3) / 0.2, 0.0, 1.0))
    return _MapPart(m * gate, float(np.clip((contrast - 0.3) / 0.4, 0.0, 1.0)), detail), phase


def _clipped_blocks(gray: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Blocks (grid at `phase`) with a pixel below 0.5 or above 254.5 grey, strip by strip."""
    g, bh, bw = jm._block_grid(gray, phase)
    out = np.empty((bh, bw), bool)
    step = jm.strip_rows(bw * 8)
    for y in range(0, bh * 8, step):
        strip = g[y : y + step]
        extreme = (strip < 0.5) | (strip > 254.5)
        # Any of a block's 8 rows, then any of its 8 columns: 8 bools read as one uint64.
        rows = np.logical_or.reduce(extreme.reshape(-1, 8, bw * 8), axis=1)
        out[y // 8 : (y + step) // 8] = rows.view(np.uint64) != 0
    return out


def _quality_evidence(tables: dict[int, list[int]]) -> tuple[int, Evidence]:
    q, diff = jm.estimate_quality(tables[min(tables)])
    kind = "standard IJG table" if diff < 0.5 else f"custom table, mean difference {diff:.1f}"
    ev = Evidence(
        kind="jpeg.quality",
        summary=f"JPEG quality about {q} (luma quantisation table; {kind})",
        value=q,
    )
    return q, ev


def _grid_evidence(phase: tuple[int, int], strength: float, is_jpeg: bool) -> Evidence:
    dy, dx = phase
    if phase == (0, 0):
        text = (
            "8x8 JPEG blocking grid found at the image origin (not cropped after compression, "
            "or cropped by multiples of 8 pixels)"
        )
    else:
        text = (
            f"8x8 JPEG blocking grid starts at row {dy}, column {dx}, not at (0, 0): the image "
            f"was cropped by {(8 - dy) % 8} rows and {(8 - dx) % 8} columns (plus any multiple of "
            "8) after a JPEG save"
        )
    if not is_jpeg:
        text += "; the file is not a JPEG, so it was JPEG-compressed before being re-saved"
    return Evidence(
        kind="jpeg.grid", summary=f"{text} (grid contrast {strength:.2f})", value=f"{dy},{dx}"
    )


@register_expert
class JpegArtifactsExpert(Expert):
    spec = ExpertSpec(
        name="jpeg_artifacts",
        version="0.1.2",
        kind="signal",
        targets="tampered",
        description="JPEG quality from the tables, 8x8 grid alignment, and a block map of "
        "aligned (JPEG ghost), non-aligned (second block grid) and lattice (DCT histogram) "
        "double-compression inconsistencies.",
        inputs=["rgb", "jpeg_quantization", "bytes"],
        produces_heatmap=True,
        reference="Farid, 'Exposing digital forgeries from JPEG ghosts', IEEE TIFS 2009; "
        "Li, Yuan & Yu, 'Passive detection of doctored JPEG image via block artifact grid "
        "extraction', Signal Processing 2009; Lin et al., 'Fast, automatic and fine-grained "
        "tampered JPEG image detection via DCT coefficient analysis', Pattern Recognition 2009",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        if min(image.height, image.width) < MIN_SIDE:
            return self.abstain(f"image smaller than {MIN_SIDE} px: too few 8x8 blocks")
        gray = image.gray
        phase, strength = jm.grid_phase(gray)
        tables = quantization_tables(image)
        luma_table = tables[min(tables)] if tables else None
        phases = [(0, 0)] if tables else list(dict.fromkeys([phase, (0, 0)]))
        dq, dq_phase = dq_map(gray, phases, luma_table)
        lattice = int(dq.detail["dq_periodic_frequencies"]) >= DQ_MIN_FREQUENCIES
        if tables is None and strength < GRID_MIN_STRENGTH and not lattice:
            return self.abstain(
                "no JPEG compression history found (no quantisation tables, no 8x8 blocking, "
                f"no quantised DCT histograms; grid contrast {strength:.3f})",
                details={"grid_strength": strength},
            )
        evidence: list[Evidence] = []
        q_final = None
        if tables is not None:
            q_final, ev = _quality_evidence(tables)
            evidence.append(ev)
        if strength >= GRID_MIN_STRENGTH:
            evidence.append(_grid_evidence(phase, strength, image.is_jpeg))
        ghost = aligned_ghost(gray, phase, q_final)
        # A second grid only means something next to a clear first one, and only survives a
        # high-quality last save (a strong last grid also leaks blocking onto other phases).
        na_ok = strength >= GRID_MIN_STRENGTH and (q_final or 0) >= NA_MIN_QUALITY
        second = nonaligned_grid(gray, phase) if na_ok else _MapPart(np.zeros((1, 1)), 0.0, {})
        shape = (image.height, image.width)
        heat = paint_blocks(np.zeros((1, 1), np.float32), shape, cell=8)
        # Each map lives on its own block grid.
        parts = (("jpeg.ghost", ghost, phase), ("jpeg.second_grid", second, (0, 0)),
                 ("jpeg.dq_lattice", dq, dq_phase))  # fmt: skip
        for kind, part, origin in parts:
            if part.strength > 0:
                # The returned map is at the working size; boxes are found at full size.
                heat = np.maximum(heat, paint_blocks(part.blocks, shape, cell=8, offset=origin))
                found = _part_evidence(kind, part, jm.hot_bbox_blocks(part.blocks, shape, origin))
                evidence += [found] if found else []
        if not any(e.bbox for e in evidence):
            text = (
                "no area with a different JPEG history was found (JPEG ghost, second grid and "
                "DCT lattice checks)"
            )
            evidence.append(Evidence(kind="jpeg.double_compression", summary=text, value=0.0))
        score = max(ghost.strength, second.strength, dq.strength)
        details: dict[str, object] = {
            "grid_phase": list(phase),
            "grid_strength": strength,
            "quality": q_final,
            **ghost.detail,
            **second.detail,
            **dq.detail,
        }
        return self.result(score, evidence=evidence, heatmap=heat, details=details)


def _part_evidence(
    kind: str, part: _MapPart, box: tuple[int, int, int, int] | None
) -> Evidence | None:
    """One checkable sentence for a map part, boxed on its own hottest area (`box`)."""
    if part.strength <= 0 or box is None:
        return None
    where = f"area x={box[0]}..{box[0] + box[2]}, y={box[1]}..{box[1] + box[3]}"
    d = part.detail
    if kind == "jpeg.ghost":
        q1, ratio = d["ghost_quality"], float(d["ghost_error_ratio"])
        text = (
            f"JPEG ghost: re-saving at quality {q1} changes the {where} by "
            f"{float(d['ghost_error_inside']):.2f} vs {float(d['ghost_error_rest']):.2f} for the "
            f"rest (variance of the change, grey levels^2; {1 / max(ratio, 1e-6):.1f}x less); it "
            f"was saved earlier at about quality {q1}"
        )
    elif kind == "jpeg.second_grid":
        r, c, ratio = (
            d["second_grid_row"],
            d["second_grid_col"],
            float(d["second_grid_ghost_ratio"]),
        )
        text = (
            f"a second 8x8 blocking grid starting at row {r}, column {c} appears in the {where}, "
            f"and re-saving that area at quality {d['second_grid_ghost_quality']} on this grid "
            f"changes it {1 / max(ratio, 1e-6):.1f}x less than on the image's own grid: a patch "
            "from another JPEG pasted off the image's grid"
        )
    else:
        text = (
            f"the DCT coefficients of the {where} are off the quantisation lattice (steps "
            f"{d['dq_steps']} {d['dq_units']} in the lowest frequencies) that the rest of the "
            f"image follows (off-lattice probability {float(d['dq_inside']):.2f} there vs "
            f"{float(d['dq_elsewhere']):.2f} elsewhere): it did not go through the same JPEG "
            "compression"
        )
    bbox = BBox(x=box[0], y=box[1], width=box[2], height=box[3])
    return Evidence(kind=kind, summary=text, value=round(part.strength, 3), bbox=bbox)
