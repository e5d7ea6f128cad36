"""Thumbnails of the worst errors for the HTML report: the image as the system saw it, its
heatmap in red on top (re-scored: maps are not kept in the journal) and the true mask outline
in green. Embedded as PNG data URIs so the page stays one self-contained file."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..fusion.localize import resize_map
from .align import Preprocess
from .datasets import Sample
from .protocol import System
from .runner import base_record, load_input, sample_key
from .systems import ImageSystem

THUMB = 256


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return np.asarray(m & ~inner, dtype=bool)


def overlay_png(data: bytes, heatmap: np.ndarray | None, mask: np.ndarray | None) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    if heatmap is not None:
        hm = np.clip(np.nan_to_num(resize_map(heatmap, h, w)), 0, 1)[..., None]
        rgb = rgb * (1 - 0.6 * hm) + np.array([255.0, 0, 0]) * 0.6 * hm
    if mask is not None and mask.shape == (h, w):
        rgb[_outline(mask)] = (0, 255, 0)
    out = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    out.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


def worst_error_overlays(
    system: System | None,
    samples: Sequence[Sample],
    worst: Sequence[dict[str, Any]],
    pre: Preprocess,
    limit: int = 6,
) -> dict[str, str]:
    """{caption: data URI} for `limit` worst errors (half false positives, half false
    negatives when both exist); failures are skipped (the table still lists them)."""
    by_key = {sample_key(s): s for s in samples}
    out: dict[str, str] = {}
    fps = [r for r in worst if r["label"] == "real"]
    fns = [r for r in worst if r["label"] != "real"]
    take = fps[: max(limit // 2, limit - len(fns))]
    for row in take + fns[: limit - len(take)]:
        sample = by_key.get(row["path"])
        if sample is None:
            continue
        loaded = load_input(sample, pre, base_record(sample))
        if loaded is None:
            continue
        data, mask = loaded
        heatmap = None
        if isinstance(system, ImageSystem) and system.produces_heatmap:
            try:
                heatmap = system.predict(data, sample).heatmap
            except Exception:  # an overlay is a nicety: never fail a report for it
                heatmap = None
        try:
            png = overlay_png(data, heatmap, mask)
        except Exception:
            continue
        caption = f"{row['path']} (label {row['label']}, P(fake) {row['fake_probability']:.2f})"
        out[caption] = "data:image/png;base64," + base64.b64encode(png).decode()
    return out
