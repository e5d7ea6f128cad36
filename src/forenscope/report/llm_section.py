"""The "LLM analysis" section of the Markdown and HTML reports (empty for offline reports).

Everything the LLM wrote is untrusted text, like image metadata: it goes through `md_text` or
`html.escape` exactly as the rest of the report does.
"""

from __future__ import annotations

import html

from ..types import Report
from ..types.llm import LLMAssessment, Stage1Result, Stage2Result
from .html_parts import table, tech_section
from .md_text import _table, md_text

_VERDICT_WORDS = {
    "agree": "agrees with the experts' verdict",
    "disagree": "DISAGREES with the experts' verdict (which stands)",
    "no_llm_answer": "gave no usable answer (refusal or error); nothing to compare",
    "experts_undecided": "cannot be compared: the experts could not judge",
}


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def stage1_rows(s1: Stage1Result) -> list[tuple[str, str]]:
    """(field, value) pairs of stage 1, as plain text (escaped by the caller)."""
    reasons = sorted(
        {s.refusal_reason or "unspecified" for s in s1.samples if s.label == "refusal"}
    )
    rows = [
        ("status", s1.status),
        ("P(tampered or AI-generated)", _p(s1.probability)),
        ("method", s1.method),
        ("votes", f"{s1.yes} yes, {s1.no} no"),
        ("refusals", f"{s1.refusals}" + (f" ({', '.join(reasons)})" if reasons else "")),
    ]
    if s1.failed_samples:
        rows.append(("failed samples", str(s1.failed_samples)))
    if s1.k_shot:
        rows.append(("k-shot examples", f"{s1.k_shot}: {', '.join(s1.example_ids)}"))
    if s1.error is not None:
        rows.append(("error", f"{s1.error.type}: {s1.error.message}"))
    return rows


def stage2_rows(s2: Stage2Result) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("status", s2.status)]
    if s2.answer is not None:
        a = s2.answer
        box = "—" if a.location.box is None else ", ".join(f"{v:.2f}" for v in a.location.box)
        rows += [
            ("location (relative)", a.location.relative or "—"),
            ("location (absolute)", a.location.absolute or "—"),
            ("box (x0, y0, x1, y1 share)", box),
            ("forged content", a.forged_content or "—"),
            ("visible traces", "; ".join(a.visible_traces) or "—"),
            ("method", a.method),
            ("scope", a.scope),
            ("reasoning", a.reasoning or "—"),
        ]
    if s2.problem:
        rows.append(("problem", s2.problem))
    if s2.status != "ok" and s2.raw:
        rows.append(("raw answer", s2.raw[:1000]))
    if s2.error is not None:
        rows.append(("error", f"{s2.error.type}: {s2.error.message}"))
    return rows


def _head(a: LLMAssessment) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in a.prompt_versions.items())
    return f"model {a.model} ({a.flavor}); prompts {versions}"


def render_llm_markdown(report: Report) -> str:
    a = report.llm
    if a is None:
        return ""
    lines = ["## LLM analysis", "", md_text(_head(a)), ""]
    lines += [f"The LLM {md_text(_VERDICT_WORDS[a.verdict_agreement])}.", "", "### Stage 1: detect"]
    lines += [
        "",
        *_table(["field", "value"], [[md_text(k), md_text(v)] for k, v in stage1_rows(a.stage1)]),
    ]
    lines += ["", "### Stage 2: analyse", ""]
    if a.stage2 is None:
        lines.append(f"Not run: {md_text(a.stage2_skipped or 'no reason recorded')}.")
    else:
        rows = [[md_text(k), md_text(v)] for k, v in stage2_rows(a.stage2)]
        lines += _table(["field", "value"], rows)
    if a.agreement:
        rows = [
            [md_text(x.expert), f"{x.expert_score:.2f}", f"{x.llm_probability:.2f}",
             "agrees" if x.agrees else "**disagrees**"]
            for x in a.agreement
        ]  # fmt: skip
        lines += ["", "### Agreement with the experts", ""]
        lines += _table(["expert", "expert score", "LLM P", "LLM vs expert"], rows)
    if a.evidence_shown:
        cited = {e.id for e in a.cited_evidence}
        rows = [
            [md_text(e.id), "**cited**" if e.id in cited else "", md_text(e.text)]
            for e in a.evidence_shown
        ]
        lines += [
            "",
            "### Evidence shown to the LLM",
            "",
            *_table(["id", "cited", "evidence"], rows),
        ]
    if a.unknown_citations:
        told = md_text(", ".join(a.unknown_citations))
        lines += ["", f"Cited but never shown (ignored): {told}"]
    return "\n".join(lines)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<div class="table-wrap"><table>{body}</table></div>'


def render_llm_html(report: Report) -> str:
    a = report.llm
    if a is None:
        return ""
    # Inline style: offline reports keep the exact same stylesheet.
    style = ' style="color:#b00020;font-weight:600"' if a.verdict_agreement == "disagree" else ""
    parts = [
        "<h2>LLM analysis</h2>",
        f'<p class="muted">{_esc(_head(a))}</p>',
        f"<p{style}>The LLM {_esc(_VERDICT_WORDS[a.verdict_agreement])}.</p>",
        "<h3>Stage 1: detect</h3>",
        _html_table(stage1_rows(a.stage1)),
        "<h3>Stage 2: analyse</h3>",
    ]
    if a.stage2 is None:
        parts.append(f"<p>Not run: {_esc(a.stage2_skipped or 'no reason recorded')}.</p>")
    else:
        parts.append(_html_table(stage2_rows(a.stage2)))
    if a.agreement:
        rows = [
            [_esc(x.expert), f"{x.expert_score:.2f}", f"{x.llm_probability:.2f}",
             "agrees" if x.agrees else "<strong>disagrees</strong>"]
            for x in a.agreement
        ]  # fmt: skip
        header = ["expert", "expert score", "LLM P", "LLM vs expert"]
        parts.append("<h3>Agreement with the experts</h3>" + table(header, rows, numeric={1, 2}))
    if a.evidence_shown:
        cited = {e.id for e in a.cited_evidence}
        items = "".join(
            f"<li><code>{_esc(e.id)}</code> {_esc(e.text)}"
            f"{' <strong>(cited)</strong>' if e.id in cited else ''}</li>"
            for e in a.evidence_shown
        )
        parts.append(f"<h3>Evidence shown to the LLM</h3><ul>{items}</ul>")
    if a.unknown_citations:
        parts.append(
            f"<p>Cited but never shown (ignored): {_esc(', '.join(a.unknown_citations))}</p>"
        )
    return tech_section("LLM analysis", "".join(parts[1:]), "llm")
