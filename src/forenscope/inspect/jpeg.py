"""The JPEG panel: quantisation tables, the quality they correspond to, and ghost curves.

A JPEG ghost (Farid 2009): re-save the picture at each quality and measure how much it changes.
The change dips at the quality the picture was last saved at; a second, local dip means part of
the picture was saved at another quality before it was pasted in.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from ..experts._jpeg_math import estimate_quality, recompress
from ..io.input import ImageInput

GHOST_QUALITIES = tuple(range(30, 101, 5))
GHOST_MAX_PIXELS = 1_000_000  # a centred crop on the 8x8 grid: the curve needs no more
STANDARD_TABLE_ERROR = 0.5  # mean |difference| to the libjpeg table below which it is standard


class QuantTable(BaseModel):
    index: int
    channel: str = Field(description="'luma' for table 0, 'chroma' for the others")
    values: list[int] = Field(description="64 values, row by row as the file stores them")
    estimated_quality: int = Field(description="the closest libjpeg (IJG) quality")
    mean_difference: float = Field(description="mean |difference| to that libjpeg table")
    standard: bool = Field(description="the table is libjpeg's own at that quality")


class GhostPoint(BaseModel):
    quality: int
    difference: float = Field(description="mean squared luma change when re-saved at `quality`")


class JpegPanel(BaseModel):
    is_jpeg: bool
    format: str
    subsampling: str | None = None
    tables: list[QuantTable] = Field(default_factory=list)
    estimated_quality: int | None = Field(default=None, description="from the luma table")
    ghost: list[GhostPoint] = Field(default_factory=list)
    ghost_minimum: int | None = Field(
        default=None, description="quality of the curve's lowest point above 30 (the last save)"
    )
    notes: list[str] = Field(default_factory=list)


def quant_tables(quantization: dict[int, list[int]] | None) -> list[QuantTable]:
    out = []
    for index, raw in sorted((quantization or {}).items())[:4]:  # JPEG allows at most 4
        values = [int(v) for v in list(raw)[:64]]
        if len(values) < 64:
            continue
        chroma = index > 0
        quality, err = estimate_quality(values, chroma=chroma)
        out.append(
            QuantTable(
                index=index, channel="chroma" if chroma else "luma", values=values,
                estimated_quality=quality, mean_difference=round(err, 3),
                standard=err < STANDARD_TABLE_ERROR,
            )
        )  # fmt: skip
    return out


def grid_crop(gray: np.ndarray, max_pixels: int = GHOST_MAX_PIXELS) -> np.ndarray:
    """A centred crop of at most `max_pixels`, starting on the 8x8 grid so blocks stay aligned."""
    h, w = gray.shape
    if h * w <= max_pixels:
        return gray
    side = int(max_pixels**0.5) // 8 * 8
    ch, cw = min(h, side), min(w, max_pixels // max(min(h, side), 1) // 8 * 8)
    top, left = (h - ch) // 2 // 8 * 8, (w - cw) // 2 // 8 * 8
    return gray[top : top + ch, left : left + cw]


def ghost_curve(gray: np.ndarray) -> list[GhostPoint]:
    crop = np.clip(np.round(grid_crop(gray)), 0, 255).astype(np.uint8)
    base = crop.astype(np.float32)
    return [
        GhostPoint(
            quality=q, difference=round(float(np.mean((recompress(crop, q) - base) ** 2)), 4)
        )
        for q in GHOST_QUALITIES
    ]


def ghost_minimum(curve: list[GhostPoint]) -> int | None:
    """The quality of the deepest dip below the line between its neighbours (100 never counts:
    re-saving at 100 changes any picture least)."""
    if len(curve) < 3:
        return None
    diffs = [p.difference for p in curve]
    best, depth = None, 0.0
    for i in range(1, len(curve) - 1):
        dip = (diffs[i - 1] + diffs[i + 1]) / 2 - diffs[i]
        if dip > depth:
            best, depth = curve[i].quality, dip
    return best


def jpeg_panel(image: ImageInput) -> JpegPanel:
    tables = quant_tables(image.quantization)
    curve = ghost_curve(image.gray)
    notes = []
    if not image.is_jpeg:
        notes.append(
            f"the file is {image.format}, not JPEG: it has no quantisation tables; a ghost dip "
            "still shows a JPEG history before conversion"
        )
    elif tables and not tables[0].standard:
        notes.append(
            "the luma table is not libjpeg's: a camera or editor's own table, so the quality is "
            "only the closest equivalent"
        )
    return JpegPanel(
        is_jpeg=image.is_jpeg, format=image.format, subsampling=image.jpeg_subsampling,
        tables=tables, estimated_quality=tables[0].estimated_quality if tables else None,
        ghost=curve, ghost_minimum=ghost_minimum(curve), notes=notes,
    )  # fmt: skip
