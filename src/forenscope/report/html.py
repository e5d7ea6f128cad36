"""The report as ONE self-contained HTML file: the picture at full resolution with zoom and pan,
switchable overlays with a colour legend, the regions and copy-move pairs drawn and numbered,
the evidence, and a reading mode for non-specialists that folds the technical detail.

Nothing is loaded from outside: the picture is a data URL (the original file when a browser
shows it as analysed, else a re-encoded copy that says so), every heatmap is a colour-mapped,
semi-transparent PNG data URL at the map's own resolution, the mask outline and the pair lines
are SVG, and CSS and the script are inline. Every string from the report goes through
`html.escape`, because metadata (EXIF, PNG text, file names) is attacker-controlled.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..types import BBox, Evidence, ExpertResult, Region, Report
from .daam_section import render_daam_html
from .faces_section import render_faces_html
from .html_assets import CSS, JS
from .html_parts import esc, table, tech_section
from .llm_section import render_llm_html
from .markdown import LABEL_TITLES, expert_status, verdict_headline
from .overlays import (
    INFERNO_LUT,
    any_at_least,
    data_url,
    embedded_image,
    mask_outline_path,
    overlay_png,
)
from .pairs import CopyPair, copy_move_pairs, pair_of_region
from .plain_language import GLOSSARY, plain_summary

if TYPE_CHECKING:
    from ..io.input import ImageInput

MAX_MAP_SIDE = 2048  # maps are smooth or blocky; past this a larger PNG shows nothing new
FOUND_NOTHING_BELOW = 0.2  # a map under this everywhere draws (nearly) nothing: say so
LABEL_ROOM = 8.0  # % of the picture's height a box label needs outside its box
OUTLINE_GRID = 512  # the mask outline is traced on a grid of at most this many cells a side


def render_html(report: Report, image: ImageInput | None = None) -> str:
    """The whole report as one HTML document string."""
    title = esc(report.image.path or report.image.sha256[:12])
    pairs = copy_move_pairs(report)
    body = [
        _header(report),
        '<div class="grid">',
        f"<section>{_viewer(report, image, pairs)}</section>",
        _plain(report),
        "</div>",
        tech_section("Verdict and explanation", _summary(report), "summary"),
        _regions(report, pairs),
        _evidence(report.key_evidence),
        render_faces_html(report),
        render_daam_html(report),
        _experts(report),
        render_llm_html(report),
        _image_info(report),
        _glossary(),
    ]
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>Forenscope report: {title}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{''.join(body)}\n</main>\n<script>{JS}</script>\n</body>\n</html>\n"
    )


def badge_class(report: Report) -> str:
    v = report.verdict
    return f"label-{v.label}" if v.decided_by != "none" else "decided-none"


def _header(report: Report) -> str:
    v = report.verdict
    calibrated = "calibrated" if v.calibrated else "not calibrated"
    name = esc(report.image.path or report.image.sha256[:12])
    state = ""
    if not v.decided and v.decided_by != "none":
        state = (
            f'<p class="needs-review">Needs review: the evidence leans to '
            f"<strong>{esc(LABEL_TITLES.get(v.leaning, v.leaning))}</strong> with probability "
            f"{v.probability:.2f}, not enough to decide.</p>"
        )
    return (
        f"<header><h1>Forenscope report: {name}</h1>"
        f'<div class="verdict {badge_class(report)}" role="status">'
        f"{esc(verdict_headline(v))}</div> "
        f'<span class="muted">decided by {esc(v.decided_by)}; {calibrated}</span>'
        + state
        + "".join(f'<p class="conflict">Conflicting evidence: {esc(c)}</p>' for c in v.conflicts)
        + '<div class="mode"><button type="button" id="mode-plain" aria-pressed="false">'
        "For non-specialists: fold the technical detail</button></div></header>"
    )


def _plain(report: Report) -> str:
    s = plain_summary(report)
    parts = [
        '<section class="plain" aria-labelledby="plain-title">',
        '<h2 id="plain-title">In plain words</h2>',
        f'<p class="plain-verdict">{esc(s.verdict)}</p>',
    ]
    if s.evidence:
        items = "".join(
            f"<li>{esc(p.text)} <details class='more'><summary>technical detail</summary>"
            f"{_terms(esc(p.technical))}"
            + (f' <span class="muted">({esc(p.expert)})</span>' if p.expert else "")
            + "</details></li>"
            for p in s.evidence
        )
        parts.append(f"<h3>What was found</h3><ul>{items}</ul>")
    if s.where:
        parts.append("<h3>Where to look</h3><ul>" + "".join(f"<li>{esc(w)}</li>" for w in s.where))
        parts.append("</ul>")
    parts.append("<h3>Keep in mind</h3><ul>" + "".join(f"<li>{esc(c)}</li>" for c in s.caveats))
    parts.append("</ul></section>")
    return "".join(parts)


# --- the viewer ---------------------------------------------------------------------------


def _map_size(shape: tuple[int, ...], width: int, height: int) -> tuple[int, int]:
    """(width, height) of an overlay: the map's own size, at most the picture's and
    MAX_MAP_SIDE, keeping the picture's aspect so the browser stretches it exactly."""
    map_h, map_w = shape[:2]
    side = min(max(map_w, map_h), max(width, height), MAX_MAP_SIDE)
    scale = side / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _layers(report: Report, width: int, height: int) -> list[tuple[str, str, str, str]]:
    """(layer id, label, PNG data URL, found-nothing note or "") per map in memory."""
    sources: list[tuple[str, str, np.ndarray]] = []
    if report.fused_heatmap is not None:
        sources.append(("fused", "fused map (all experts)", np.asarray(report.fused_heatmap)))
    for i, r in enumerate(report.experts):
        if r.heatmap is not None and np.asarray(r.heatmap).ndim >= 2:
            sources.append((f"expert-{i}", r.expert, np.asarray(r.heatmap)))
    layers = []
    for layer_id, label, heat in sources:
        url = data_url(overlay_png(heat, size=_map_size(heat.shape, width, height)), "image/png")
        nothing = ""
        if not any_at_least(heat, FOUND_NOTHING_BELOW):
            who = "the fused map" if layer_id == "fused" else "this expert"
            nothing = f"{who} found nothing: its map stays under {FOUND_NOTHING_BELOW:.1f}"
        layers.append((layer_id, label, url, nothing))
    return layers


def _viewer(report: Report, image: ImageInput | None, pairs: list[CopyPair]) -> str:
    width, height = report.image.width or 1, report.image.height or 1
    if image is not None:
        height, width = image.height, image.width
    parts = [
        '<h2 id="viewer-title">The picture</h2>',
        '<div class="viewport" tabindex="0" aria-labelledby="viewer-title" '
        'aria-describedby="zoom-help">',
        f'<div class="stage" data-width="{width}" data-height="{height}" '
        f'style="aspect-ratio: {width} / {height}">',
    ]
    caption = "No picture embedded (the report was rendered from JSON alone)."
    if image is not None:
        url, caption = embedded_image(image)
        parts.append(f'<img class="base" alt="{esc(_alt_text(report))}" src="{url}">')
    layers = _layers(report, width, height)
    first = layers[0][0] if layers else "none"
    for layer_id, label, url, _ in layers:
        hidden = "" if layer_id == first else ' style="display:none"'
        parts.append(
            f'<img class="layer" data-layer="{esc(layer_id)}" alt="{esc(label)} heatmap"'
            f'{hidden} src="{url}">'
        )
    parts.append(_marks_svg(report, width, height, pairs))
    boxes = "".join(_box(r, pairs) for r in report.regions)
    boxes += "".join(_pair_boxes(p, width, height) for p in pairs)
    parts.append(f'<div class="boxes">{boxes}</div>')
    parts.append('<p class="layer-note" hidden></p></div></div>')
    parts.append(
        '<div class="zoom" role="group" aria-label="Zoom">'
        '<button type="button" data-zoom="out" aria-label="Zoom out">&minus;</button>'
        '<button type="button" data-zoom="fit">Fit</button>'
        '<button type="button" data-zoom="1">100%</button>'
        '<button type="button" data-zoom="4">400%</button>'
        '<button type="button" data-zoom="in" aria-label="Zoom in">+</button>'
        '<span id="zoom-level" aria-live="polite">fit</span></div>'
        f'<p id="zoom-help" class="muted">{esc(caption)} Zoom with the buttons, Ctrl + wheel '
        "or the + / &minus; keys (0 fits, 1 is 100%); drag or scroll to pan.</p>"
    )
    parts.append(_controls(layers, first, report.fused_mask is not None, bool(pairs)))
    parts.append(_legend(bool(report.regions), report.fused_mask is not None, bool(pairs)))
    return "".join(parts)


def _alt_text(report: Report) -> str:
    n = len(report.regions)
    marked = f"{n} marked region{'s' if n != 1 else ''}" if n else "no marked region"
    return f"The analysed image. Verdict: {verdict_headline(report.verdict)}; {marked}."


def _marks_svg(report: Report, width: int, height: int, pairs: list[CopyPair]) -> str:
    shapes = []
    if report.fused_mask is not None:
        path, (grid_w, grid_h) = mask_outline_path(report.fused_mask, OUTLINE_GRID)
        if path:
            shapes.append(
                f'<g transform="scale({width / grid_w:.6g} {height / grid_h:.6g})">'
                f'<path class="outline" d="{path}"/></g>'
            )
    for p in pairs:
        (ax, ay), (bx, by) = _centre(p.a), _centre(p.b)
        shapes.append(
            f'<line class="pair-line" x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}"/>'
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" aria-hidden="true">'
        + "".join(shapes)
        + "</svg>"
    )


def _centre(box: BBox) -> tuple[float, float]:
    return box.x + box.width / 2, box.y + box.height / 2


def _box(region: Region, pairs: list[CopyPair]) -> str:
    x, y, w, h = (100.0 * v for v in region.bbox_relative)
    pair = pair_of_region(pairs, region.id)
    label = f"{region.id}" + (f" · {pair}" if pair else "")
    flip = " flip" if y < LABEL_ROOM else ""  # no room above: the number goes below the box
    return (
        f'<div class="box{flip}" title="{esc(region.description)}" '
        f'style="left:{x:.2f}%;top:{y:.2f}%;width:{w:.2f}%;height:{h:.2f}%">'
        f"<span>{esc(label)}</span></div>"
    )


def _pair_boxes(pair: CopyPair, width: int, height: int) -> str:
    out = []
    for side, box, _ in pair.sides():
        x, y = 100.0 * box.x / width, 100.0 * box.y / height
        w, h = 100.0 * box.width / width, 100.0 * box.height / height
        flip = " flip" if y + h > 100.0 - LABEL_ROOM else ""  # no room below: label above
        out.append(
            f'<div class="pair{flip}" title="copy-move pair {pair.number}, side {side}: one side '
            f'is a copy of the other" style="left:{x:.2f}%;top:{y:.2f}%;width:{w:.2f}%;'
            f'height:{h:.2f}%"><span>pair {pair.number}{side}</span></div>'
        )
    return "".join(out)


def _controls(
    layers: list[tuple[str, str, str, str]], first: str, has_mask: bool, has_pairs: bool
) -> str:
    radios = [
        '<label><input type="radio" name="layer" value="none"'
        + (" checked" if first == "none" else "")
        + "> no overlay</label>"
    ]
    for layer_id, label, _, nothing in layers:
        checked = " checked" if layer_id == first else ""
        note = f' <span class="nothing">({esc(nothing.split(":")[0])})</span>' if nothing else ""
        radios.append(
            f'<label><input type="radio" name="layer" value="{esc(layer_id)}"{checked} '
            f'data-nothing="{esc(nothing)}"> {esc(label)}{note}</label>'
        )
    toggles = [
        ("show-outline", "mask outline", has_mask),
        ("show-boxes", "region boxes", True),
        ("show-pairs", "copy-move pairs", has_pairs),
    ]
    boxes = "".join(
        f'<label><input type="checkbox" id="{i}" checked> {label}</label>'
        for i, label, shown in toggles
        if shown
    )
    return (
        '<fieldset class="controls"><legend>Overlay</legend>'
        + "".join(radios)
        + "<br>"
        + boxes
        + '<label>opacity <input type="range" id="opacity" min="0" max="100" value="70">'
        + "</label></fieldset>"
    )


def _legend(has_regions: bool, has_mask: bool, has_pairs: bool) -> str:
    stops = ", ".join(
        f"rgb({r},{g},{b}) {100 * i / 10:.0f}%"
        for i, (r, g, b) in enumerate(INFERNO_LUT[np.linspace(0, 255, 11).astype(int)].tolist())
    )
    items = [
        '<span>heatmap: <span class="muted">0 nothing</span> '
        f'<span class="ramp" role="img" aria-label="colour scale from dark purple (0, nothing '
        f'found) to pale yellow (1, most suspicious)" style="background: linear-gradient(to '
        f'right, {stops})"></span> <span class="muted">1 most suspicious</span> '
        '<span class="muted">(clear below 0.05)</span></span>'
    ]
    if has_regions:
        items.append(
            '<span><span class="swatch" style="border:2px solid #00e5ff"></span>numbered region '
            "of the fused map</span>"
        )
    if has_mask:
        items.append(
            '<span><span class="swatch" style="border-top:2px solid #00e5ff"></span>mask '
            "outline</span>"
        )
    if has_pairs:
        items.append(
            '<span><span class="swatch" style="border:2px dashed #ff4fd8"></span>copy-move pair '
            "(A and B joined by a line; one is a copy of the other)</span>"
        )
    return '<div class="legend" aria-label="Legend">' + "".join(items) + "</div>"


# --- technical sections -------------------------------------------------------------------


def _summary(report: Report) -> str:
    v, a = report.verdict, report.attribution
    rows = [
        [
            esc(LABEL_TITLES.get(k, k))
            + (" <strong>(leaning)</strong>" if not v.decided and k == v.leaning else ""),
            f"{p:.3f}",
        ]
        for k, p in v.probabilities.items()
    ]
    paragraphs = "".join(
        f"<p>{_terms(esc(p))}</p>" for p in report.explanation.split("\n\n") if p.strip()
    )
    return (
        table(["label", "probability"], rows, numeric={1}) + "<h3>Attribution</h3><ul>"
        f"<li>Method: {esc(a.method)}</li><li>Scope: {esc(a.scope)}</li>"
        f"<li>Basis: {esc(a.basis or '—')}</li></ul>"
        f"<h3>Explanation</h3>{paragraphs or '<p class=muted>No explanation.</p>'}"
    )


def _regions(report: Report, pairs: list[CopyPair]) -> str:
    regions = report.regions
    if not regions:
        return tech_section("Regions", "<p>No suspicious region in the fused map.</p>", "regions")
    rows = []
    for r in regions:
        pair = pair_of_region(pairs, r.id)
        rows.append(
            [
                str(r.id),
                esc(r.relative_position),
                esc(r.size_words),
                f"x {r.bbox.x}, y {r.bbox.y}, {r.bbox.width}&times;{r.bbox.height}",
                f"{r.mean_score:.2f}",
                esc(", ".join(r.experts) or "—"),
                esc(f"copy-move {pair}" if pair else "—"),
                esc(r.description),
            ]
        )
    header = ["#", "where", "size", "box (px)", "mean", "experts", "pair", "description"]
    body = table(header, rows, numeric={0, 4})
    for p in pairs:
        body += (
            f"<p>Copy-move pair {p.number}: side A at {_box_words(p.a)} and side B at "
            f"{_box_words(p.b)}; one is a copy of the other (regions "
            f"{esc(_ids(p.regions_a))} and {esc(_ids(p.regions_b))}).</p>"
        )
    return tech_section("Regions", body, "regions")


def _box_words(b: BBox) -> str:
    return f"x {b.x}, y {b.y}, {b.width}&times;{b.height} px"


def _ids(ids: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in ids) or "none drawn"


def evidence_item(ev: Evidence) -> str:
    value = f' <span class="muted">(value: {esc(ev.value)})</span>' if ev.value is not None else ""
    proof = f' <span class="proof">proves {esc(ev.proves)}</span>' if ev.proves else ""
    return f"<li><code>{esc(ev.kind)}</code> {_terms(esc(ev.summary))}{value}{proof}</li>"


def _evidence(evidence: list[Evidence]) -> str:
    body = "<p>None.</p>"
    if evidence:
        body = "<ol>" + "".join(evidence_item(e) for e in evidence) + "</ol>"
    return tech_section("Key evidence", body, "evidence")


def _experts(report: Report) -> str:
    if not report.experts:
        return ""
    rows = [_expert_row(r) for r in report.experts]
    header = ["expert", "targets", "score", "conf.", "status", "evidence", "s"]
    return tech_section("Experts", table(header, rows, numeric={2, 3, 6}), "experts")


def _expert_row(r: ExpertResult) -> list[str]:
    score = "—" if r.score is None else f"{r.score:.2f}"
    evidence = "".join(evidence_item(e) for e in r.evidence[:3])
    return [
        f"{esc(r.expert)} <span class=muted>{esc(r.version)}</span>",
        esc(r.targets),
        score,
        f"{r.confidence:.2f}",
        esc(expert_status(r)),
        f"<ul>{evidence}</ul>",
        f"{r.elapsed_s:.2f}",
    ]


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
    return tech_section(
        "Image, timings and errors", f'<div class="table-wrap"><table>{body}</table></div>', "image"
    )


def _glossary() -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in GLOSSARY.items())
    return tech_section(
        "What the technical terms mean", f'<dl class="glossary">{items}</dl>', "terms"
    )


_TERMS = re.compile(r"\b(AUC|logit|DAAM|ELA)\b")


def _terms(escaped: str) -> str:
    """Already-escaped text with the jargon terms explained on hover and focus (<abbr>)."""
    return _TERMS.sub(
        lambda m: f'<abbr title="{esc(GLOSSARY[m.group(1)])}">{m.group(1)}</abbr>', escaped
    )
