"""The explanation's LLM paragraph: what the LLM said, and where it differs from the experts.

Built only from fields of `Report.llm`, so every sentence can be checked against the report.
A refusal is told as a refusal, and a disagreement with the experts is always spelled out.
"""

from __future__ import annotations

from ..types import Report, Verdict
from ..types.llm import LLMAssessment, Stage1Result, Stage2Result

_LABEL = {"real": "real", "ai_generated": "AI-generated", "tampered": "tampered"}
MAX_CITED_TOLD = 4


def llm_paragraph(report: Report) -> str:
    """One paragraph about `report.llm` ('' when the analysis ran offline)."""
    return "" if report.llm is None else assessment_paragraph(report.verdict, report.llm)


def assessment_paragraph(verdict: Verdict, a: LLMAssessment) -> str:
    """One paragraph about the assessment `a` of an image the experts judged `verdict`."""
    parts = [_stage1_sentence(a), _comparison_sentence(verdict, a), _stage2_sentence(a)]
    return " ".join(p for p in parts if p)


def _how(s1: Stage1Result) -> str:
    if s1.method == "logprobs":
        return "from the yes/no token log-probabilities"
    refused = (
        f", {s1.refusals} refused or undetermined answer(s) not counted" if s1.refusals else ""
    )
    short = ""
    if s1.answers_received < s1.answers_requested:
        short = f" ({s1.answers_received} of the {s1.answers_requested} answers asked for arrived)"
    return f"from {s1.votes} vote(s): {s1.yes} yes, {s1.no} no{refused}{short}"


def _stage1_sentence(a: LLMAssessment) -> str:
    s1 = a.stage1
    who = f"The multimodal LLM ({a.model}, prompt {s1.prompt_version})"
    if s1.status == "refused":
        reasons = sorted({s.refusal_reason or "unspecified" for s in s1.samples})
        return (
            f"{who} refused to say whether the image is tampered or AI-generated "
            f"({s1.refusals} answer(s) refused or undetermined; reasons: "
            f"{', '.join(reasons) or 'unspecified'}). "
            "A refusal is not a vote: the verdict above is the experts' alone."
        )
    if s1.status == "error" or s1.probability is None:
        error = f": {s1.error.type}: {s1.error.message}" if s1.error else ""
        return f"{who} could not be asked{error}. The verdict above is the experts' alone."
    answer = "yes" if s1.probability >= 0.5 else "no"
    return (
        f"{who} answered {answer} to 'is this image tampered or AI-generated?' with "
        f"probability {s1.probability:.2f} {_how(s1)}."
    )


def _comparison_sentence(verdict: Verdict, a: LLMAssessment) -> str:
    label = _LABEL.get(verdict.label, verdict.label)
    if a.verdict_agreement == "agree":
        text = f"This agrees with the experts' verdict ({label})."
    elif a.verdict_agreement == "disagree":
        text = (
            f"This DISAGREES with the experts' verdict ({label}); the verdict stays the experts', "
            "so weigh the LLM's answer against the evidence listed."
        )
    elif a.verdict_agreement == "experts_undecided":
        text = (
            "The experts could not judge this image, so there is nothing to compare it with."
            if verdict.decided_by == "none"
            else "The experts' verdict is inconclusive, so there is no label to compare it with."
        )
    else:
        return ""
    sides = [x.expert for x in a.agreement if x.agrees]
    against = [x.expert for x in a.agreement if not x.agrees]
    if sides or against:
        text += f" Experts on the LLM's side: {', '.join(sides) or 'none'}"
        text += f"; against it: {', '.join(against) or 'none'}."
    return text


def _stage2_sentence(a: LLMAssessment) -> str:
    s2 = a.stage2
    if s2 is None:
        return ""
    if s2.status == "refused":
        return "It declined the structured analysis (where, what, how)."
    if s2.status == "error":
        error = f" ({s2.error.type}: {s2.error.message})" if s2.error else ""
        return f"Its structured analysis failed{error}."
    if s2.status == "unparseable" or s2.answer is None:
        return (
            f"Its structured analysis could not be read ({s2.problem or 'no valid JSON'}); the "
            "raw answer is kept in the report, not guessed from."
        )
    return _analysis_sentence(a, s2)


def _analysis_sentence(a: LLMAssessment, s2: Stage2Result) -> str:
    ans = s2.answer
    assert ans is not None
    where = ans.location.absolute or ans.location.relative or "an unstated place"
    text = (
        f"Its analysis points to {where}: {ans.forged_content or 'unstated content'} "
        f"(method {ans.method}, scope {ans.scope})."
    )
    if a.cited_evidence:
        told = ", ".join(e.id for e in a.cited_evidence[:MAX_CITED_TOLD])
        more = len(a.cited_evidence) - MAX_CITED_TOLD
        text += f" It cited evidence {told}{f' and {more} more' if more > 0 else ''}."
    elif a.evidence_shown:
        text += " It cited none of the expert evidence it was shown."
    if a.unknown_citations:
        text += f" It also cited ids it was never shown ({', '.join(a.unknown_citations)})."
    return text
