"""The video report as JSON, Markdown and one self-contained HTML file.

The HTML holds a timeline (an inline SVG of the frame probabilities, the face-track scores and
the spans of the temporal findings), a scrubber that shows each sampled frame with its fused
map, the findings, the face tracks and the provenance. Nothing is loaded from outside, and
every string from the file goes through `html.escape` (tags and file names are untrusted).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from ..report.markdown import LABEL_TITLES
from ..report.md_text import md_text
from ..report.overlays import data_url, image_data_url, overlay_png
from ..types import ClipVerdict, VideoReport
from .timeline_assets import CSS, JS

FORMATS = ("json", "md", "html")
KEYFRAME_SIDE = 640
CLASS_COLOURS = {"real": "#2e7d32", "ai_generated": "#6a1b9a", "tampered": "#c62828"}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def headline(v: ClipVerdict) -> str:
    if v.label != "inconclusive":
        return f"{LABEL_TITLES[v.label]} · {v.probability:.2f}"
    return f"Inconclusive (needs review), leaning {LABEL_TITLES[v.leaning]} · {v.probability:.2f}"


def video_stem(report: VideoReport) -> str:
    stem = Path(report.clip.path).stem if report.clip.path else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return stem or report.clip.sha256[:12]


def write_video_report(
    report: VideoReport, out_dir: Path, *, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        "json": lambda: report.model_dump_json(indent=2),
        "md": lambda: render_video_markdown(report),
        "html": lambda: render_video_html(report),
    }
    paths = {}
    for fmt in formats:
        paths[fmt] = out_dir / f"{video_stem(report)}.{fmt}"
        paths[fmt].write_text(writers[fmt](), encoding="utf-8")
    return paths


def _top(fr_report_regions: Sequence[object]) -> str:
    return str(getattr(fr_report_regions[0], "description", "")) if fr_report_regions else ""


def llm_items(report: VideoReport) -> list[str]:
    """The LLM section's lines: stage 2's answer, what it cited, then every E-line it saw."""
    llm = report.llm
    if llm is None:
        return []
    s2 = llm.stage2
    items = [f"{llm.model}, stage 2 on keyframes {', '.join(map(str, llm.keyframes))}: {s2.status}"
             + (f" ({s2.problem})" if s2.problem else "")]  # fmt: skip
    if s2.answer is not None:
        a = s2.answer
        items += [
            f"forged content: {a.forged_content}; method {a.method}, scope {a.scope}",
            f"where: {a.location.relative or a.location.absolute or 'not said'}",
            f"reasoning: {a.reasoning}",
            f"cited: {', '.join(llm.cited_evidence) or 'nothing'}"
            + (f" (never shown: {', '.join(llm.unknown_citations)})" if llm.unknown_citations
               else ""),
        ]  # fmt: skip
    return items + [f"E{i}: {line}" for i, line in enumerate(llm.evidence_shown, 1)]


def render_video_markdown(report: VideoReport) -> str:
    c, v = report.clip, report.verdict
    out = [
        f"# Forenscope video report: {md_text(c.path or c.sha256[:12])}",
        "",
        f"**Verdict: {md_text(headline(v))}** (decided by {v.decided_by}; not calibrated)",
        "",
        md_text(report.explanation),
        "",
        "## Clip",
        "",
        "| field | value |",
        "|---|---|",
        f"| container / codec | {md_text(c.container)} / {md_text(c.codec)} |",
        f"| size | {c.width}x{c.height} |",
        f"| duration, fps, frames | {c.duration_s:.2f} s, {c.fps:.2f} fps, {c.frames} |",
        f"| streams (audio) | {c.streams} ({c.audio_streams}) |",
        f"| sha256 | `{c.sha256}` |",
        "",
        "## Timeline of the sampled frames",
        "",
        "| frame | time s | why sampled | frame verdict | P(real) | P(AI) | P(tampered) | "
        "faces | first region |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fr in report.frames:
        fv, p = fr.report.verdict, fr.report.verdict.probabilities
        out.append(
            f"| {fr.index} | {fr.time_s:.2f} | {fr.reason} | {md_text(LABEL_TITLES[fv.label])} | "
            f"{p.get('real', 0):.2f} | {p.get('ai_generated', 0):.2f} | "
            f"{p.get('tampered', 0):.2f} | {len(fr.report.faces)} | "
            f"{md_text(_top(fr.report.regions))} |"
        )
    out += ["", "## Temporal evidence", ""]
    out += [f"- **{f.kind}**: {md_text(f.summary)}" for f in report.temporal] or ["- none found"]
    out += ["", "## Face tracks", ""]
    out += [f"- {md_text(t.summary)}" for t in report.face_tracks] or ["- no face found"]
    out += ["", "## Container provenance", ""]
    out += [f"- {md_text(e.summary)}" for e in report.provenance] or ["- nothing telling"]
    if report.llm is not None:
        out += ["", "## LLM (stage 2 on keyframes)", ""]
        out += [f"- {md_text(item)}" for item in llm_items(report)]
    if report.scene_cuts:
        out += ["", f"Scene cuts at frames: {', '.join(map(str, report.scene_cuts))}"]
    out += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in report.notes]
    return "\n".join(out) + "\n"


def _svg_timeline(report: VideoReport) -> str:
    """Frame probabilities per class over time, face-track means, and finding spans."""
    w, h, pad = 900, 220, 30
    total = max(1, report.clip.frames - 1)

    def x(frame: int) -> float:
        return pad + (w - 2 * pad) * frame / total

    def y(p: float) -> float:
        return h - pad - (h - 2 * pad) * p

    parts = [f'<svg class="timeline" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="frame probabilities over time">',
             f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" '
             'fill="#fff" stroke="#ccc"/>']  # fmt: skip
    for f in report.temporal:
        colour = "#c62828" if f.suggests else "#999"
        parts.append(
            f'<rect class="span" x="{x(f.frame_start):.1f}" y="{pad}" '
            f'width="{max(2.0, x(f.frame_end) - x(f.frame_start)):.1f}" height="8" '
            f'fill="{colour}" opacity="0.6"><title>{esc(f.summary)}</title></rect>'
        )
    for cls, colour in CLASS_COLOURS.items():
        pts = " ".join(
            f"{x(fr.index):.1f},{y(fr.report.verdict.probabilities.get(cls, 0)):.1f}"
            for fr in report.frames
        )
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for t in report.face_tracks:
        for name, scores in t.check_scores.items():
            pts = " ".join(
                f"{x(f):.1f},{y(s):.1f}"
                for f, s in zip(t.frames, scores, strict=False)
                if s is not None
            )
            if pts:
                parts.append(
                    f'<polyline points="{pts}" fill="none" stroke="#00838f" stroke-dasharray="4 3"'
                    f' stroke-width="1"><title>face {t.id}: {esc(name)}</title></polyline>'
                )
    for i, fr in enumerate(report.frames):
        parts.append(
            f'<line class="tick" data-i="{i}" x1="{x(fr.index):.1f}" x2="{x(fr.index):.1f}" '
            f'y1="{pad}" y2="{h - pad}" stroke="#bbb"/>'
        )
    for cut in report.scene_cuts:
        parts.append(
            f'<line x1="{x(cut):.1f}" x2="{x(cut):.1f}" y1="{pad}" y2="{h - pad}" '
            'stroke="#000" stroke-dasharray="2 2"><title>scene cut</title></line>'
        )
    for p in (0.0, 0.5, 1.0):  # the probability axis
        parts.append(f'<text x="{pad - 4}" y="{y(p) + 4:.1f}" text-anchor="end" class="axis">'
                     f"{p:g}</text>")  # fmt: skip
    parts.append(f'<text x="{pad}" y="{h - 8}" class="axis">0 s</text>')
    parts.append(f'<text x="{w - pad}" y="{h - 8}" text-anchor="end" class="axis">'
                 f"{report.clip.duration_s:.1f} s</text></svg>")  # fmt: skip
    return "".join(parts)


def _scrubber(report: VideoReport) -> str:
    if not report.frames:
        return "<p>No frame could be analysed.</p>"
    slides = []
    for i, fr in enumerate(report.frames):
        if fr.rgb is None:
            continue
        url, w, h = image_data_url(fr.rgb, max_side=KEYFRAME_SIDE)
        layer = ""
        if fr.report.fused_heatmap is not None:
            png = overlay_png(fr.report.fused_heatmap, size=(w, h))
            layer = f'<img class="map" alt="fused map" src="{data_url(png, "image/png")}">'
        fv = fr.report.verdict
        caption = (
            f"frame {fr.index} ({fr.time_s:.2f} s, {fr.reason}): "
            f"{LABEL_TITLES[fv.label]}, leaning {LABEL_TITLES[fv.leaning]} {fv.probability:.2f}"
        )
        regions = "".join(f"<li>{esc(r.description)}</li>" for r in fr.report.regions[:3])
        slides.append(
            f'<figure class="slide" data-i="{i}" style="aspect-ratio:{w}/{h}">'
            f'<img alt="frame {fr.index}" src="{url}">{layer}</figure>'
            f'<figcaption class="cap" data-i="{i}">{esc(caption)}<ul>{regions}</ul></figcaption>'
        )
    return (
        '<div class="scrub">' + "".join(slides) + "</div>"
        f'<label>frame <input id="scrub" type="range" min="0" max="{len(report.frames) - 1}" '
        'value="0"></label> <label><input id="showmap" type="checkbox" checked> fused map</label>'
    )


def render_video_html(report: VideoReport) -> str:
    c, v = report.clip, report.verdict
    name = esc(c.path or c.sha256[:12])
    css = f"label-{v.label}"
    findings = (
        "".join(f"<li><b>{esc(f.kind)}</b>: {esc(f.summary)}</li>" for f in report.temporal)
        or "<li>none found</li>"
    )
    tracks = "".join(f"<li>{esc(t.summary)}</li>" for t in report.face_tracks) or "<li>none</li>"
    prov = "".join(f"<li>{esc(e.summary)}</li>" for e in report.provenance) or "<li>none</li>"
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    llm = "".join(f"<li>{esc(item)}</li>" for item in llm_items(report))
    conflicts = "".join(f'<p class="conflict">Conflicting: {esc(x)}</p>' for x in v.conflicts)
    legend = " ".join(
        f'<span style="color:{col}">&#9632; P({esc(LABEL_TITLES[k])})</span>'
        for k, col in CLASS_COLOURS.items()
    )
    body = (
        f"<header><h1>Forenscope video report: {name}</h1>"
        f'<div class="verdict {esc(css)}">{esc(headline(v))}</div> '
        f'<span class="muted">decided by {esc(v.decided_by)}; not calibrated</span>{conflicts}'
        f"<p>{esc(report.explanation)}</p></header>"
        f'<h2>Timeline</h2><p class="muted">{legend} '
        '<span style="color:#00838f">- - face checks</span>; bars at the top: temporal findings '
        "(red: suggests an edit); dashed black: scene cuts.</p>"
        f"{_svg_timeline(report)}"
        f"<h2>Sampled frames</h2>{_scrubber(report)}"
        f"<h2>Temporal evidence</h2><ul>{findings}</ul>"
        f"<h2>Face tracks</h2><ul>{tracks}</ul>"
        f"<h2>Container provenance</h2><ul>{prov}</ul>"
        + (f"<h2>LLM (stage 2 on keyframes)</h2><ul>{llm}</ul>" if llm else "")
        + f"<h2>Clip</h2><p>{esc(c.container)} / {esc(c.codec)}, {c.width}x{c.height}, "
        f"{c.duration_s:.2f} s, {c.fps:.2f} fps, {c.frames} frames, {c.streams} stream(s); "
        f"sha256 <code>{esc(c.sha256)}</code></p><h2>Notes</h2><ul>{notes}</ul>"
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Forenscope video report: {name}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n<script>{JS}</script>\n</body>\n</html>\n"
    )
