"""The clip verdict: an honest aggregation of the frame verdicts and the temporal evidence.

There is no clip-level calibration yet (12 clips exist), so the rules are plain and the
verdict says `calibrated: false`. A class is given only when the decided frames support it and
no decided frame contradicts it; anything else is "inconclusive" with the leaning shown.
"""

from __future__ import annotations

import math

import numpy as np

from ..types import ClipVerdict, Evidence, FrameResult, TemporalFinding

CLASSES = ("real", "ai_generated", "tampered")
MIN_TAMPERED_FRAMES = 2  # a local edit may cover a span only; two decided frames show it


def clip_verdict(
    frames: list[FrameResult], temporal: list[TemporalFinding], provenance: list[Evidence]
) -> ClipVerdict:
    proof = next((e for e in provenance if e.proves is not None), None)
    counts = {c: 0 for c in (*CLASSES, "inconclusive")}
    for fr in frames:
        counts[fr.report.verdict.label] += 1
    probs = _mean_probabilities(frames)
    leaning = max(CLASSES, key=lambda c: probs[c])
    common = {"probabilities": probs, "frame_labels": counts}
    if proof is not None and proof.proves is not None:
        return ClipVerdict(
            label=proof.proves, leaning=proof.proves, probability=1.0, decided_by="provenance",
            basis=f"container provenance: {proof.summary}", **common,
        )  # fmt: skip
    n = len(frames)
    if n == 0:
        return ClipVerdict(
            label="inconclusive", leaning="real", probability=probs["real"], decided_by="none",
            basis="no frame could be analysed", **common,
        )  # fmt: skip
    conflicts = [f.summary for f in temporal if f.suggests is not None and f.suggests != leaning]
    majority = math.ceil(n / 2)
    r, a, t = counts["real"], counts["ai_generated"], counts["tampered"]
    label, basis = (
        "inconclusive",
        (
            f"no class is backed by enough decided frames ({r} real, {a} AI-generated, "
            f"{t} tampered, {counts['inconclusive']} inconclusive of {n} sampled)"
        ),
    )
    if a >= max(2, majority) and r == 0 and t == 0:
        label, basis = "ai_generated", f"{a} of {n} sampled frames are AI-generated, none other"
    elif t >= MIN_TAMPERED_FRAMES and a == 0:
        label, basis = "tampered", f"{t} of {n} sampled frames are tampered, none AI-generated"
    elif r >= majority and a == 0 and t == 0:
        label, basis = "real", f"{r} of {n} sampled frames are real, none other"
    if label not in ("inconclusive", "tampered") and any(
        f.suggests == "tampered" for f in temporal
    ):
        basis += "; held back: a temporal finding suggests a local edit"
        label = "inconclusive"
    return ClipVerdict(
        label=label, leaning=leaning if label == "inconclusive" else label,
        probability=probs[leaning if label == "inconclusive" else label], basis=basis,
        conflicts=conflicts, **common,
    )  # fmt: skip


def _mean_probabilities(frames: list[FrameResult]) -> dict[str, float]:
    if not frames:
        return {c: round(1 / 3, 4) for c in CLASSES}
    return {
        c: round(float(np.mean([fr.report.verdict.probabilities.get(c, 0.0) for fr in frames])), 4)
        for c in CLASSES
    }
