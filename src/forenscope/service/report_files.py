"""The files the API serves for one analysis, written next to its report: overlays, a preview
and the original bytes. Written in a worker process (or the server's thread), read by routes."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import ImageInput
from ..types import Report
from .security import NAME_PATTERN

OVERLAY_SIDE = 800
PREVIEW_SIDE = 1600
NAME_RE = re.compile(NAME_PATTERN)


def write_files(
    report: Report, image: ImageInput, out: Path, on_map: Callable[[str], None] | None = None
) -> None:
    """Everything the API serves for one report, written into `out`; `on_map(name)` as each
    overlay is written (the fused map and mask first: the view opens on them)."""
    from ..report import render_html, render_markdown, report_to_json
    from ..report.overlays import heatmap_rgba, mask_outline_rgba, mask_png

    size = _fit(image.width, image.height, OVERLAY_SIDE)

    def overlay(name: str, file: str, rgba: np.ndarray) -> None:
        (out / file).write_bytes(png_bytes(rgba))
        if on_map is not None:
            on_map(name)

    if report.fused_heatmap is not None:
        overlay("fused", "overlay.fused.png", heatmap_rgba(report.fused_heatmap, size=size))
    if report.fused_mask is not None:
        outline = mask_outline_rgba(report.fused_mask, size=size, width=3)
        overlay("mask", "overlay.mask.png", outline)
    overlays: list[str] = []
    for result in report.experts:
        if result.heatmap is not None and NAME_RE.fullmatch(result.expert):
            rgba = heatmap_rgba(result.heatmap, size=size)
            overlay(result.expert, f"overlay.expert.{result.expert}.png", rgba)
            overlays.append(result.expert)
    # The reports and the mask sidecar; not write_report's full-size grey heatmap PNG, which
    # no route serves and which took 3.8 s of a 10 MP analysis's last 5 s.
    (out / "report.json").write_text(report_to_json(report), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, image), encoding="utf-8")
    if report.fused_mask is not None:
        (out / "report.mask.png").write_bytes(mask_png(report.fused_mask))
    (out / "preview.jpg").write_bytes(preview_jpeg(image.rgb))
    (out / "original.bin").write_bytes(image.data)  # for the analyst's tools (routes_inspect)
    (out / "index.json").write_text(json.dumps({"overlays": overlays}), encoding="utf-8")


def png_bytes(array: np.ndarray) -> bytes:
    """Fast PNG (zlib level 3, no optimise pass): overlays are written once per analysis."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def preview_jpeg(rgb: np.ndarray) -> bytes:
    """A re-encoded copy of the picture for the browser (never the uploaded bytes themselves)."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("RGB")
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))
