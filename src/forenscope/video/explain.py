"""The clip's explanation in plain words, built only from what the report holds."""

from __future__ import annotations

from ..types import VideoReport

LABEL_WORDS = {
    "real": "looks like real footage",
    "ai_generated": "looks AI-generated",
    "tampered": "looks locally edited",
    "inconclusive": "is inconclusive (needs review)",
}


def explain_clip(report: VideoReport) -> str:
    v = report.verdict
    c = report.clip
    lines = [
        f"The clip ({c.width}x{c.height}, {c.duration_s:.1f} s, {c.fps:.1f} fps, {c.codec}) "
        f"{LABEL_WORDS[v.label]}: {v.basis}."
    ]
    if v.label == "inconclusive":
        lines.append(f"It leans {v.leaning} (mean frame probability {v.probability:.2f}).")
    lines.append(
        "This clip verdict is an uncalibrated aggregation of the frame verdicts; no clip-level "
        "calibration exists yet."
    )
    if report.scene_cuts:
        lines.append(f"{len(report.scene_cuts)} hard cut(s) found; the clip is edited.")
    strong = [f for f in report.temporal if f.suggests is not None]
    for f in strong[:3]:
        lines.append(f.summary)
    others = len(report.temporal) - len(strong)
    if others:
        lines.append(f"{others} further temporal observation(s) are listed; none decides alone.")
    proofs = [e.summary for e in report.provenance if e.proves is not None]
    lines += proofs[:2]
    return " ".join(lines)
