"""The report as ONE self-contained HTML file: image, switchable overlays, regions, evidence.

Nothing is loaded from outside: the picture is a JPEG data URL (at most `MAX_SIDE` px), every
heatmap is a colour-mapped, semi-transparent PNG data URL layered over it, CSS and the small
toggle script are inline. Every string from the report goes through `html.escape`, because
metadata (EXIF, PNG text, file names) is attacker-controlled.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

from ..types import Evidence, Region, Report
from .daam_section import render_daam_html
from .faces_section import render_faces_html
from .html_assets import CSS, JS
from .llm_section import render_llm_html
from .markdown import LABEL_TITLES, expert_status, verdict_headline
from .overlays import data_url, image_data_url, mask_outline_rgba, overlay_png, png_bytes

if TYPE_CHECKING:
    from ..io.input import ImageInput

MAX_SIDE = 1600
OVERLAY_SIDE = 640  # heatmaps are smooth; the browser stretches them over the picture


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_html(report: Report, image: ImageInput | None = None) -> str:
    """The whole report as one HTML document string."""
    title = esc(report.image.path or report.image.sha256[:12])
    body = [
        _header(report),
        '<div class="grid">',
        f"<section>{_viewer(report, image)}</section>",
        f"<section>{_summary(report)}</section>",
        "</div>",
        _regions(report.regions),
        _evidence(report.key_evidence),
        render_faces_html(report),
        render_daam_html(report),
        _experts(report),
        render_llm_html(report),
        _image_info(report),
    ]
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Forenscope report: {title}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{''.join(body)}\n</main>\n<script>{JS}</script>\n</body>\n</html>\n"
    )


def _header(report: Report) -> str:
    v = report.verdict
    css = f"label-{v.label}" if v.decided_by != "none" else "decided-none"
    calibrated = "calibrated" if v.calibrated else "not calibrated"
    name = esc(report.image.path or report.image.sha256[:12])
    return (
        f"<header><h1>Forenscope report: {name}</h1>"
        f'<div class="verdict {esc(css)}">{esc(verdict_headline(v))}</div> '
        f'<span class="muted">decided by {esc(v.decided_by)}; {calibrated}</span>'
        + "".join(f'<p class="conflict">Conflicting evidence: {esc(c)}</p>' for c in v.conflicts)
        + "</header>"
    )


def _overlay_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, OVERLAY_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _layers(report: Report, width: int, height: int) -> list[tuple[str, str, str]]:
    """(layer id, label, PNG data URL) for the fused map and every expert map in memory."""
    size = _overlay_size(width, height)
    layers = []
    if report.fused_heatmap is not None:
        url = data_url(overlay_png(report.fused_heatmap, size=size), "image/png")
        layers.append(("fused", "fused map", url))
    for i, r in enumerate(report.experts):
        if r.heatmap is not None and np.asarray(r.heatmap).ndim >= 2:
            url = data_url(overlay_png(r.heatmap, size=size), "image/png")
            layers.append((f"expert-{i}", r.expert, url))
    return layers


def _viewer(report: Report, image: ImageInput | None) -> str:
    width, height = report.image.width or 1, report.image.height or 1
    parts = [f'<div class="stage" style="aspect-ratio: {width} / {height}">']
    if image is not None:
        url, _, _ = image_data_url(image.rgb, max_side=MAX_SIDE)
        parts.append(f'<img class="base" alt="analysed image" src="{url}">')
        height, width = image.height, image.width
    layers = _layers(report, width, height)
    first = layers[0][0] if layers else "none"
    for layer_id, label, url in layers:
        hidden = "" if layer_id == first else ' style="display:none"'
        parts.append(
            f'<img class="layer" data-layer="{esc(layer_id)}" alt="{esc(label)} heatmap"'
            f'{hidden} src="{url}">'
        )
    if report.fused_mask is not None:
        outline = mask_outline_rgba(report.fused_mask, size=_overlay_display_size(width, height))
        parts.append(
            f'<img class="outline" alt="fused mask outline" '
            f'src="{data_url(png_bytes(outline), "image/png")}">'
        )
    parts.append(f'<div class="boxes">{"".join(_box(r) for r in report.regions)}</div></div>')
    parts.append(_controls(layers, first, report.fused_mask is not None))
    return "".join(parts)


def _overlay_display_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _box(region: Region) -> str:
    x, y, w, h = (100.0 * v for v in region.bbox_relative)
    return (
        f'<div class="box" title="{esc(region.description)}" '
        f'style="left:{x:.2f}%;top:{y:.2f}%;width:{w:.2f}%;height:{h:.2f}%">'
        f"<span>{region.id}</span></div>"
    )


def _controls(layers: list[tuple[str, str, str]], first: str, has_mask: bool) -> str:
    radios = [
        '<label><input type="radio" name="layer" value="none"'
        + (" checked" if first == "none" else "")
        + "> no overlay</label>"
    ]
    for layer_id, label, _ in layers:
        checked = " checked" if layer_id == first else ""
        radios.append(
            f'<label><input type="radio" name="layer" value="{esc(layer_id)}"{checked}> '
            f"{esc(label)}</label>"
        )
    mask_box = (
        '<label><input type="checkbox" id="show-outline" checked> mask outline</label>'
        if has_mask
        else '<input type="checkbox" id="show-outline" hidden>'
    )
    return (
        '<fieldset class="controls"><legend>Overlay</legend>'
        + "".join(radios)
        + "<br>"
        + mask_box
        + '<label><input type="checkbox" id="show-boxes" checked> region boxes</label>'
        + '<label>opacity <input type="range" id="opacity" min="0" max="100" value="70">'
        + "</label></fieldset>"
    )


def _summary(report: Report) -> str:
    v, a = report.verdict, report.attribution
    rows = "".join(
        f'<tr><td>{esc(LABEL_TITLES.get(k, k))}</td><td class="num">{p:.3f}</td></tr>'
        for k, p in v.probabilities.items()
    )
    paragraphs = "".join(f"<p>{esc(p)}</p>" for p in report.explanation.split("\n\n") if p.strip())
    return (
        "<h2>Verdict</h2><table><tr><th>label</th><th>probability</th></tr>"
        f"{rows}</table>"
        "<h2>Attribution</h2><ul>"
        f"<li>Method: {esc(a.method)}</li><li>Scope: {esc(a.scope)}</li>"
        f"<li>Basis: {esc(a.basis or '—')}</li></ul>"
        f"<h2>Explanation</h2>{paragraphs or '<p class=muted>No explanation.</p>'}"
    )


def _regions(regions: list[Region]) -> str:
    if not regions:
        return "<h2>Regions</h2><p>No suspicious region in the fused map.</p>"
    rows = "".join(
        f'<tr><td class="num">{r.id}</td><td>{esc(r.relative_position)}</td>'
        f"<td>{esc(r.size_words)}</td>"
        f'<td class="num">x {r.bbox.x}, y {r.bbox.y}, {r.bbox.width}&times;{r.bbox.height}</td>'
        f'<td class="num">{r.mean_score:.2f}</td><td>{esc(", ".join(r.experts) or "—")}</td>'
        f"<td>{esc(r.description)}</td></tr>"
        for r in regions
    )
    return (
        "<h2>Regions</h2><table><tr><th>#</th><th>where</th><th>size</th><th>bbox (px)</th>"
        f"<th>mean</th><th>experts</th><th>description</th></tr>{rows}</table>"
    )


def _evidence_item(ev: Evidence) -> str:
    value = f' <span class="muted">(value: {esc(ev.value)})</span>' if ev.value is not None else ""
    proof = f' <span class="proof">proves {esc(ev.proves)}</span>' if ev.proves else ""
    return f"<li><code>{esc(ev.kind)}</code> {esc(ev.summary)}{value}{proof}</li>"


def _evidence(evidence: list[Evidence]) -> str:
    if not evidence:
        return "<h2>Key evidence</h2><p>None.</p>"
    return "<h2>Key evidence</h2><ol>" + "".join(_evidence_item(e) for e in evidence) + "</ol>"


def _experts(report: Report) -> str:
    if not report.experts:
        return ""
    rows = []
    for r in report.experts:
        score = "—" if r.score is None else f"{r.score:.2f}"
        evidence = "".join(_evidence_item(e) for e in r.evidence[:3])
        rows.append(
            f"<tr><td>{esc(r.expert)} <span class=muted>{esc(r.version)}</span></td>"
            f"<td>{esc(r.targets)}</td><td class=num>{score}</td>"
            f"<td class=num>{r.confidence:.2f}</td><td>{esc(expert_status(r))}</td>"
            f"<td><ul>{evidence}</ul></td><td class=num>{r.elapsed_s:.2f}</td></tr>"
        )
    return (
        "<h2>Experts</h2><table><tr><th>expert</th><th>targets</th><th>score</th><th>conf.</th>"
        f"<th>status</th><th>evidence</th><th>s</th></tr>{''.join(rows)}</table>"
    )


def _image_info(report: Report) -> str:
    i = report.image
    rows = [
        ("file", i.path or "—"),
        ("sha256", i.sha256),
        ("format", i.format),
        ("size", f"{i.width}×{i.height} px, {i.bytes} bytes"),
        ("mode", f"{i.mode}, {i.bit_depth} bit, {i.frames} frame(s)"),
        *(("note", n) for n in i.notes),
        ("versions", f"Forenscope {report.forenscope_version}, schema {report.schema_version}"),
        *((f"time: {k}", f"{t:.3f} s") for k, t in report.timings.items()),
        *((f"error: {e.type}", e.message) for e in report.errors),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<h2>Image, timings and errors</h2><table>{body}</table>"
