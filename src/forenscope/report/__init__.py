"""Report renderers: JSON, Markdown and one self-contained HTML file, plus PNG sidecars.

`write_report(report, image, out_dir)` writes `<stem>.json`, `<stem>.md`, `<stem>.html` and, when
the report carries them, `<stem>.heatmap.png` (fused map, 8-bit gray) and `<stem>.mask.png`.
Regenerate docs/report-schema.json with `python -m forenscope.report docs/report-schema.json`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..types import Report

if TYPE_CHECKING:
    from ..io.input import ImageInput
    from .html import render_html
    from .json_report import json_schema, json_schema_text, report_to_json, write_json_schema
    from .markdown import render_markdown

# The renderers load on first use: `analyze` imports this package for `explain` and writes no
# report file unless asked (issue 15: cold start; the HTML modules were ~30 ms of every run).
_LAZY = {
    "render_html": ".html",
    "render_markdown": ".markdown",
    "json_schema": ".json_report",
    "json_schema_text": ".json_report",
    "report_to_json": ".json_report",
    "write_json_schema": ".json_report",
    "heatmap_png": ".overlays",
    "mask_png": ".overlays",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "json_schema",
    "json_schema_text",
    "render_html",
    "render_markdown",
    "report_stem",
    "report_to_json",
    "write_json_schema",
    "write_report",
]

FORMATS = ("json", "md", "html")


def report_stem(report: Report, image: ImageInput | None = None) -> str:
    """A safe file stem: the image's file name, else the first 12 hex digits of its sha256."""
    path = (image.path if image is not None else None) or report.image.path
    stem = Path(path).stem if path else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return stem or report.image.sha256[:12] or "report"


def write_report(
    report: Report,
    image: ImageInput | None,
    out_dir: Path,
    *,
    formats: Sequence[str] = FORMATS,
    stem: str | None = None,
) -> dict[str, Path]:
    """Write the requested formats and the map sidecars; returns {kind: path}."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    from .html import render_html
    from .json_report import report_to_json
    from .markdown import render_markdown
    from .overlays import heatmap_png, mask_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or report_stem(report, image)
    paths: dict[str, Path] = {}
    writers = {
        "json": lambda: report_to_json(report),
        "md": lambda: render_markdown(report),
        "html": lambda: render_html(report, image),
    }
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        path.write_text(writers[fmt](), encoding="utf-8")
        paths[fmt] = path
    if report.fused_heatmap is not None:
        paths["heatmap"] = out_dir / f"{stem}.heatmap.png"
        paths["heatmap"].write_bytes(heatmap_png(report.fused_heatmap))
    if report.fused_mask is not None:
        paths["mask"] = out_dir / f"{stem}.mask.png"
        paths["mask"].write_bytes(mask_png(report.fused_mask))
    return paths
