"""The report as Markdown: verdict, probabilities, attribution, regions, evidence, experts.

Every string that may come from the image (metadata, file names, expert evidence) goes through
`md_text`, which escapes HTML and the Markdown characters that could form links or tables.
"""

from __future__ import annotations

import re

from ..types import ExpertResult, Report, Verdict
from .md_text import _table, evidence_line, md_text

LABEL_TITLES = {
    "real": "Real",
    "ai_generated": "AI-generated",
    "tampered": "Tampered",
    "inconclusive": "Inconclusive",
}


def verdict_headline(v: Verdict) -> str:
    """ "AI-generated · 0.97", or "Inconclusive (needs review), leaning Real · 0.62"."""
    if v.decided:
        return f"{LABEL_TITLES.get(v.label, v.label)} · {v.probability:.2f}"
    leaning = LABEL_TITLES.get(v.leaning, v.leaning)
    return f"Inconclusive (needs review), leaning {leaning} · {v.probability:.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_markdown(report: Report) -> str:
    """The whole report as one Markdown document."""
    from .faces_section import render_faces_markdown
    from .llm_section import render_llm_markdown

    sections = [
        f"# Forenscope report: {md_text(report.image.path or report.image.sha256[:12])}",
        render_plain_markdown(report),
        "---\n\n*Technical detail for specialists follows.*",
        _header(report),
        _explanation(report),
        _attribution(report),
        _regions(report),
        _evidence(report),
        render_faces_markdown(report),
        _experts(report),
        render_llm_markdown(report),
        _image(report),
        _timings(report),
        _errors(report),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _header(report: Report) -> str:
    v = report.verdict
    calibrated = "calibrated" if v.calibrated else "not calibrated"
    lines = [
        "## Verdict",
        "",
        f"**Verdict: {verdict_headline(v)}** (decided by {v.decided_by}; {calibrated})",
        "",
    ]
    lines += [f"- Conflicting evidence: {md_text(c)}" for c in v.conflicts]
    lines += [""] if v.conflicts else []
    rows = [[LABEL_TITLES.get(k, md_text(k)), f"{p:.3f}"] for k, p in v.probabilities.items()]
    return "\n".join(lines + _table(["label", "probability"], rows))


def render_plain_markdown(report: Report) -> str:
    """The summary for non-specialists: the verdict in one sentence, then the evidence, where
    to look and what the result does not say, each without jargon."""
    from .plain_language import plain_summary

    s = plain_summary(report)
    lines = ["## In plain words", "", f"**{md_text(s.verdict)}**"]
    if s.evidence:
        lines += ["", "What was found:", ""] + [f"- {md_text(p.text)}" for p in s.evidence]
    if s.where:
        lines += ["", "Where to look:", ""] + [f"- {md_text(w)}" for w in s.where]
    lines += ["", "Keep in mind:", ""] + [f"- {md_text(c)}" for c in s.caveats]
    return "\n".join(lines)


def _explanation(report: Report) -> str:
    if not report.explanation:
        return ""
    paragraphs = [md_text(p) for p in report.explanation.split("\n\n") if p.strip()]
    return "## Explanation\n\n" + "\n\n".join(paragraphs)


def _attribution(report: Report) -> str:
    a = report.attribution
    return "\n".join(
        [
            "## Attribution",
            "",
            f"- Method: {md_text(a.method)}",
            f"- Scope: {md_text(a.scope)}",
            f"- Basis: {md_text(a.basis or '—')}",
        ]
    )


def _regions(report: Report) -> str:
    if not report.regions:
        return "## Regions\n\nNo suspicious region in the fused map."
    rows = []
    for r in report.regions:
        b = r.bbox
        rel = ", ".join(f"{v:.2f}" for v in r.bbox_relative)
        rows.append(
            [
                str(r.id),
                md_text(r.relative_position),
                md_text(r.size_words),
                f"x {b.x}, y {b.y}, {b.width}×{b.height}",
                rel,
                f"{r.mean_score:.2f}",
                md_text(", ".join(r.experts) or "—"),
            ]
        )
    header = ["#", "where", "size", "bbox (px)", "bbox (x, y, w, h share)", "mean", "experts"]
    descriptions = [f"{r.id}. {md_text(r.description)}" for r in report.regions]
    return "\n".join(["## Regions", "", *_table(header, rows), "", *descriptions])


def _evidence(report: Report) -> str:
    if not report.key_evidence:
        return "## Key evidence\n\nNone."
    lines = [f"{i}. {evidence_line(ev)}" for i, ev in enumerate(report.key_evidence, start=1)]
    return "## Key evidence\n\n" + "\n".join(lines)


def expert_status(r: ExpertResult) -> str:
    if r.error is not None:
        return f"error: {r.error.type}: {r.error.message}"
    if r.score is None:
        return f"abstained: {r.abstain_reason or 'no reason given'}"
    return "judged"


def _experts(report: Report) -> str:
    if not report.experts:
        return ""
    rows = []
    for r in report.experts:
        top = r.evidence[0].summary if r.evidence else "—"
        rows.append(
            [
                md_text(r.expert),
                md_text(r.version),
                md_text(r.targets),
                _num(r.score),
                _num(r.confidence),
                md_text(expert_status(r)),
                md_text(top),
                f"{r.elapsed_s:.2f}",
            ]
        )
    header = ["expert", "version", "targets", "score", "conf.", "status", "top evidence", "s"]
    return "\n".join(["## Experts", "", *_table(header, rows)])


def _image(report: Report) -> str:
    i = report.image
    rows = [
        ["file", md_text(i.path or "—")],
        ["sha256", f"`{i.sha256}`" if re.fullmatch(r"[0-9a-f]*", i.sha256) else md_text(i.sha256)],
        ["format", md_text(i.format)],
        ["size", f"{i.width}×{i.height} px, {i.bytes} bytes"],
        ["mode", md_text(f"{i.mode}, {i.bit_depth} bit, {i.frames} frame(s)")],
    ]
    rows += [["note", md_text(n)] for n in i.notes]
    versions = (
        f"Forenscope {md_text(report.forenscope_version)}, schema {md_text(report.schema_version)}"
    )
    return "\n".join(["## Image", "", *_table(["field", "value"], rows), "", versions])


def _timings(report: Report) -> str:
    if not report.timings:
        return ""
    rows = [[md_text(k), f"{v:.3f}"] for k, v in report.timings.items()]
    return "\n".join(["## Timings", "", *_table(["stage", "seconds"], rows)])


def _errors(report: Report) -> str:
    if not report.errors:
        return ""
    lines = [f"- {md_text(e.type)}: {md_text(e.message)}" for e in report.errors]
    return "## Errors\n\n" + "\n".join(lines)
