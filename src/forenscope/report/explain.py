"""An evidence-grounded explanation of a Report, in plain language, with no LLM.

Every sentence is built from fields of the report (verdict, key evidence, regions, attribution,
expert results), so a reader can check each claim against the evidence list and the maps.
"""

from __future__ import annotations

from ..types import ExpertResult, Report

_LABEL_WORDS = {
    "real": "a real photograph, with no convincing sign of generation or editing",
    "ai_generated": "AI-generated",
    "tampered": "a real photograph that was locally edited (tampered)",
}
_SHORT = {"real": "real", "ai_generated": "AI-generated", "tampered": "tampered"}
DISSENT_LEVEL = 0.8
MAX_CITED = 5
MAX_REGIONS_TOLD = 3


def explain(report: Report) -> str:
    """Plain-language paragraphs: verdict, why (cited evidence), where, how, caveats."""
    parts = [_verdict_paragraph(report)]
    if report.verdict.decided_by != "none":
        parts += [_evidence_paragraph(report), _where_paragraph(report), _how_paragraph(report)]
    parts.append(_caveats_paragraph(report))
    return "\n\n".join(p for p in parts if p)


def _verdict_paragraph(report: Report) -> str:
    v = report.verdict
    if v.decided_by == "none":
        reasons = _abstentions(report.experts)
        why = f" ({reasons})" if reasons else ""
        return (
            f"No expert could judge this image{why}, so there is no evidence either way: "
            "the verdict is inconclusive and needs review; the probabilities only restate the "
            "prior and are not a finding."
        )
    if not v.decided:
        return _inconclusive_paragraph(report)
    words = _LABEL_WORDS.get(v.label, v.label)
    calibration = (
        "calibrated on held-out data"
        if v.calibrated
        else "a pooled expert score, not yet calibrated on held-out data"
    )
    text = f"Forenscope judges this image most likely {words}: probability {v.probability:.2f} "
    text += f"({calibration})."
    if v.decided_by == "provenance":
        proof = next((ev for ev in report.key_evidence if ev.proves == v.label), None)
        if proof is not None:
            text += f" Provenance decides it: {_sentence(proof.summary)}"
    others = ", ".join(
        f"{_SHORT.get(k, k)} {p:.2f}" for k, p in v.probabilities.items() if k != v.label
    )
    if others:
        text += f" Other labels: {others}."
    return text


def _inconclusive_paragraph(report: Report) -> str:
    v = report.verdict
    words = _SHORT.get(v.leaning, v.leaning)
    text = (
        f"Inconclusive, needs review: the evidence leans to {words} "
        f"(probability {v.probability:.2f}), "
    )
    if v.conflicts:
        text += "but strong evidence conflicts with it: " + "; ".join(v.conflicts) + "."
    else:
        text += "which is not sure enough to decide on (see BENCHMARKS.md for the levels)."
    others = ", ".join(
        f"{_SHORT.get(k, k)} {p:.2f}" for k, p in v.probabilities.items() if k != v.leaning
    )
    return f"{text} Other labels: {others}." if others else text


def _evidence_paragraph(report: Report) -> str:
    cited = report.key_evidence[:MAX_CITED]
    if not cited:
        return "No single piece of evidence stands out; the verdict rests on weak, pooled scores."
    owners = _evidence_owners(report.experts)
    items = []
    for i, ev in enumerate(cited, start=1):
        owner = owners.get(_key(ev.kind, ev.summary), "")
        source = f" [{owner}]" if owner else ""
        items.append(f"({i}) {_sentence(ev.summary)}{source}")
    lead = "Evidence for this verdict" if report.verdict.decided else "Evidence for the leaning"
    return f"{lead}: " + " ".join(items)


def _where_paragraph(report: Report) -> str:
    if not report.regions:
        if report.verdict.leaning == "tampered":
            return "The fused map shows no compact suspicious region, so the edit is not located."
        return ""
    told = []
    for region in report.regions[:MAX_REGIONS_TOLD]:
        told.append(_sentence(region.description))
    more = len(report.regions) - len(told)
    tail = f" {more} more are listed in the report." if more > 0 else ""
    count = len(report.regions)
    noun = "region" if count == 1 else "regions"
    return f"Where: the fused map marks {count} {noun}. " + " ".join(told) + tail


def _how_paragraph(report: Report) -> str:
    a = report.attribution
    if report.verdict.leaning == "real":
        return ""
    scope = {"local": "a local edit", "global": "the whole image is implicated"}.get(
        a.scope, "extent unknown"
    )
    method = "not identified" if a.method == "unknown" else a.method
    basis = f" Basis: {_sentence(a.basis)}" if a.basis else ""
    return f"How: {scope}; generation method {method}.{basis}"


def _caveats_paragraph(report: Report) -> str:
    notes = []
    dissent = _dissenters(report)
    if dissent:
        notes.append(f"Disagreeing experts: {dissent}.")
    if report.verdict.decided_by != "none":
        abstained = _abstentions(report.experts)
        if abstained:
            notes.append(f"Did not vote: {abstained}.")
    if report.errors:
        notes.append("Errors: " + "; ".join(f"{e.type}: {e.message}" for e in report.errors) + ".")
    return " ".join(notes)


def _dissenters(report: Report) -> str:
    """Judged experts whose score clearly contradicts the verdict."""
    label = report.verdict.leaning
    out = []
    for r in report.experts:
        if not r.judged or r.score is None:
            continue
        suspicious = r.score >= DISSENT_LEVEL
        clean = r.score <= 1.0 - DISSENT_LEVEL
        if (label == "real" and suspicious) or (label != "real" and clean and _targets(r, label)):
            out.append(f"{r.expert} scored {r.score:.2f}")
    return ", ".join(out)


def _targets(result: ExpertResult, label: str) -> bool:
    return result.targets in (label, "both")


def _abstentions(experts: list[ExpertResult]) -> str:
    out = []
    for r in experts:
        if r.judged:
            continue
        if r.error is not None:
            out.append(f"{r.expert} failed ({r.error.type})")
        else:
            out.append(f"{r.expert}: {r.abstain_reason or 'abstained'}")
    return "; ".join(out)


def _evidence_owners(experts: list[ExpertResult]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for r in experts:
        for ev in r.evidence:
            owners.setdefault(_key(ev.kind, ev.summary), r.expert)
    return owners


def _key(kind: str, summary: str) -> str:
    return f"{kind}\x00{summary}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
