"""The "Faces" section of the Markdown and HTML reports: one block per detected face with its
box, its named regions and the per-face checks with their evidence (empty when no face).

Evidence text can quote image metadata, so it is escaped like the rest of the report.
"""

from __future__ import annotations

import html

from ..types import Report
from ..types.faces import FaceCheck, FaceReport
from .html_parts import table, tech_section
from .md_text import _table, evidence_line, md_text


def _check_status(check: FaceCheck) -> str:
    if check.score is None:
        return f"abstained: {check.abstain_reason or 'no reason given'}"
    return f"{check.score:.2f}"


def _face_facts(face: FaceReport) -> list[str]:
    b = face.face.bbox
    facts = [
        f"box x {b.x}, y {b.y}, {b.width}×{b.height} px",
        f"detector {face.face.detector}",
        f"{face.face.landmark_count} landmarks",
    ]
    if face.face.score is not None:
        facts.append(f"confidence {face.face.score:.2f}")
    return facts


def _region_names(face: FaceReport) -> str:
    names = [r.name + (" (approx.)" if r.approximate else "") for r in face.regions]
    return ", ".join(names) or "none"


def render_faces_markdown(report: Report) -> str:
    if not report.faces:
        return ""
    parts = ["## Faces"]
    for face in report.faces:
        rows = [[md_text(c.expert), md_text(_check_status(c))] for c in face.checks]
        evidence = [f"- {evidence_line(ev)}" for c in face.checks for ev in c.evidence]
        parts += [
            f"### Face {face.index}",
            md_text("; ".join(_face_facts(face))),
            f"Named regions: {md_text(_region_names(face))}",
            "\n".join(_table(["check", "score"], rows)) if rows else "No per-face check ran.",
            "\n".join(evidence),
            "\n".join(f"- note: {md_text(n)}" for n in face.notes),
        ]
    return "\n\n".join(p for p in parts if p)


def render_faces_html(report: Report) -> str:
    if not report.faces:
        return ""
    blocks = []
    for face in report.faces:
        rows = [[html.escape(c.expert), html.escape(_check_status(c))] for c in face.checks]
        evidence = "".join(
            f"<li><code>{html.escape(ev.kind)}</code> {html.escape(ev.summary)}</li>"
            for c in face.checks
            for ev in c.evidence
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in face.notes)
        blocks.append(
            f"<section><h3>Face {face.index}</h3>"
            f"<p>{html.escape('; '.join(_face_facts(face)))}</p>"
            f"<p>Named regions: {html.escape(_region_names(face))}</p>"
            f"{table(['check', 'score'], rows)}"
            f"<ul>{evidence}{notes}</ul></section>"
        )
    return tech_section("Faces", "".join(blocks), "faces")
