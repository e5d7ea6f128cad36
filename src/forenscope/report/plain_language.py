"""The report for non-specialists: one sentence for the verdict and how sure it is, the
evidence without jargon, where to look, and what the result does not say.

Every sentence is built from fields of the Report (verdict, key evidence, regions, copy-move
pairs, experts that could not run), never invented; each evidence point keeps the expert's own
technical sentence beside it, so the renderers can put the detail one click away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import Evidence, Report
from .pairs import copy_move_pairs

MAX_POINTS = 5
MAX_AREAS = 3

# What each outcome is, in everyday words (used after "is" / "leans towards").
OUTCOME_WORDS = {
    "real": "a real photo that was not edited",
    "ai_generated": "an image made by AI",
    "tampered": "a real photo that was edited in places",
}

# Terms the technical detail uses, explained once (the HTML report shows them beside it).
GLOSSARY = {
    "probability": "how likely Forenscope thinks an answer is, from 0 (surely not) to 1 (surely)",
    "inconclusive": "Forenscope decides only when its tests show it is right at least 9 times in "
    "10 for that answer; below that it says 'needs review' and gives the answer it leans to",
    "heatmap": "a colour layer over the picture: dark or clear = nothing found, bright yellow = "
    "the most suspicious places",
    "logit": "the detector's raw score before it is turned into a probability (0 = undecided, "
    "positive = AI-made, negative = real)",
    "AUC": "how well a detector separated real from AI-made pictures in testing, from 0.5 "
    "(coin toss) to 1 (perfect)",
    "DAAM": "a picture-by-picture view of how the AI detector's answer builds up through its "
    "12 processing layers",
    "ELA": "error level analysis: the picture is saved again and compared with itself; pasted or "
    "retouched areas often change differently",
    "expert": "one of Forenscope's independent checks; each looks for one kind of trace",
    "calibrated": "the probabilities were checked against images the model had not seen",
}

# One plain sentence per kind of evidence (prefix match, longest first). Values are quoted only
# where they are words a reader can check (an editor's name, a camera).
_KIND_WORDS: dict[str, str] = {
    "generator.parameters": "The file itself contains the settings of the AI image generator "
    "that made it (prompt, model and seed).",
    "generator.hint": "The file mentions AI image-generation software.",
    "watermark.dwtdct": "The picture carries an invisible watermark that AI image generators add.",
    "c2pa.digital_capture": "The file's Content Credentials (a signed record of its history) "
    "say it was captured by a camera.",
    "c2pa.data_hash_mismatch": "The file's Content Credentials no longer match the picture: it "
    "was changed after it was signed.",
    "c2pa.claim_signature_mismatch": "The signature on the file's Content Credentials is broken.",
    "c2pa.assertion_mismatch": "The file's Content Credentials no longer match the picture.",
    "c2pa.untrusted_signer": "The file's Content Credentials were signed by someone Forenscope "
    "cannot verify.",
    "c2pa": "The file carries Content Credentials (a signed record of how it was made and "
    "changed), and they bear on this answer.",
    "xmp.digital_source_type": "The file's own description states how the picture was made.",
    "xmp.photoshop_history": "The file's editing history shows it was opened and changed in an "
    "editor.",
    "xmp.document_ancestors": "The file's history lists other files that were combined into it.",
    "exif.editor": "The file's camera data names editing software",
    "exif.generator": "The file's camera data names an AI generator",
    "exif.camera": "The file's camera data names the camera that took it",
    "exif.thumbnail_mismatch": "The small preview picture stored inside the file differs from "
    "the picture itself: the picture was changed after the preview was made.",
    "exif.date_mismatch": "The dates stored in the file disagree: it was changed after it was "
    "taken.",
    "exif.modified_later": "The file was saved again well after the picture was taken.",
    "exif.future_date": "A date in the file lies in the future, so its dates cannot be trusted.",
    "copy_move.pair": "Part of the picture appears twice: one area is a copy of another (the "
    "linked pair on the picture).",
    "copy_move.none": "No part of the picture was found copied onto another part.",
    "ela.hotspot": "One area changes differently from the rest when the picture is saved again, "
    "as pasted or retouched areas often do.",
    "ela.level": "How the picture changes when it is saved again was measured; see the technical "
    "detail.",
    "noise.inconsistent_region": "One area has a different grain from the rest of the photo, as "
    "areas pasted from another picture often do.",
    "noise.none": "The grain of the photo is the same throughout.",
    "noise.model": "The photo's grain was measured as a reference for the other checks.",
    "jpeg.quality": "The file was saved as a JPEG; its quality setting was read as context.",
    "jpeg.double_compression": "The picture was saved as a JPEG at least twice. That is normal "
    "for pictures shared online, and it is also what editing leaves.",
    "jpeg.ghost": "Traces of an earlier JPEG save differ in one area from the rest, as when part "
    "of the picture comes from another image.",
    "jpeg.second_grid": "A second, shifted JPEG block pattern shows in part of the picture, as "
    "when a piece of another picture is pasted in.",
    "jpeg.grid": "The JPEG block pattern is shifted, as happens when a picture is cropped or "
    "pieced together.",
    "jpeg.dq_lattice": "The picture's numbers keep the pattern of an earlier JPEG save.",
    "spectrum.global_periodicity": "The picture was checked for the faint repeating pattern many "
    "AI generators leave.",
    "spectrum.global_resampling": "The whole picture was resized or rotated; on its own that is "
    "not suspicious.",
    "spectrum.resampled_region": "One area was resized or rotated apart from the rest, as when "
    "it is pasted in.",
    "learned_localizer.region": "A model trained to find edited areas marks one area.",
    "learned_localizer.none": "A model trained to find edited areas marks no area.",
    "clip.decision_block": "How the AI detector reached its answer is shown step by step in the "
    "technical detail.",
    "clip.method": "If the picture is AI-made, the detector also guesses which kind of generator "
    "made it.",
    "clip.patch_max": "Some parts of the picture look more AI-made to the detector than others "
    "(see the map).",
    "faces.seam": "A seam runs around a face, as when a face is swapped in.",
    "faces.consistency": "A face does not match the rest of the picture in grain, colour or "
    "compression.",
    "faces.eyes": "The reflections in the two eyes do not match, as they usually do in a photo.",
    "faces.clip": "The AI detector, looking at a face alone, rates it as AI-made.",
}


# Measurements kept as context for the other checks, not findings: technical detail only.
CONTEXT_KINDS = frozenset(
    {"jpeg.quality", "noise.model", "ela.level", "spectrum.global_periodicity", "clip.method",
     "clip.decision_block", "spectrum.global_resampling"}
)  # fmt: skip

# Each check by what it looks at, for "the ... check found nothing convincing".
CHECK_NAMES = {
    "ela": "re-save (error level analysis)",
    "noise": "grain",
    "jpeg_artifacts": "JPEG traces",
    "copy_move": "copied-area",
    "spectrum": "resizing and repeating-pattern",
    "learned_localizer": "edited-area model",
    "clip_detector": "AI-image detector",
    "exif": "camera data",
    "c2pa": "Content Credentials",
    "generator_metadata": "generator settings",
    "watermark": "watermark",
}
SUSPICIOUS_SCORE = 0.5  # an expert scoring below this did not find its trace convincing


@dataclass(frozen=True)
class PlainPoint:
    """One piece of evidence in plain words, with the expert's technical sentence beside it."""

    text: str
    technical: str
    expert: str | None = None


@dataclass(frozen=True)
class PlainSummary:
    verdict: str  # one sentence: the answer and how sure it is
    evidence: list[PlainPoint] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


def percent(p: float) -> str:
    """A probability as a percentage a reader will not take for certainty (never 0% or 100%)."""
    return f"{min(99, max(1, round(100 * p)))}%"


def certainty_words(p: float) -> str:
    if p >= 0.95:
        return "almost certainly"
    if p >= 0.8:
        return "very likely"
    if p >= 0.65:
        return "likely"
    return "possibly"


def plain_verdict(report: Report) -> str:
    """One sentence: the answer and how sure Forenscope is of it."""
    v = report.verdict
    if v.decided_by == "none":
        return (
            "Forenscope could not check this image: none of its tests could run on it, so it "
            "says nothing either way."
        )
    pct = percent(v.probability)
    if not v.decided:
        return (
            f"Not decided, needs review: the signs lean towards {OUTCOME_WORDS[v.leaning]} "
            f"({pct} likely), which is not sure enough for Forenscope to decide."
        )
    if v.decided_by == "provenance":
        return (
            f"The file's own records show this is {OUTCOME_WORDS[v.label]} "
            f"({pct} likely, from information stored in the file)."
        )
    sure = certainty_words(v.probability)
    if v.label == "real":
        return (
            f"No sign of AI generation or editing was found: this is {sure} "
            f"{OUTCOME_WORDS['real']} ({pct} likely)."
        )
    return f"This is {sure} {OUTCOME_WORDS[v.label]} ({pct} likely)."


def plain_point(ev: Evidence) -> str:
    """The evidence in plain words (a generic sentence for a kind not worded here)."""
    for prefix in sorted(_KIND_WORDS, key=len, reverse=True):
        if ev.kind == prefix or ev.kind.startswith(prefix + "."):
            text = _KIND_WORDS[prefix]
            if not text.endswith("."):  # a sentence that quotes the value it names
                named = f": {ev.value}" if isinstance(ev.value, str) and ev.value else ""
                text = f"{text}{named}."
            return text
    detector = ev.kind == "clip.generated" or ev.kind.endswith(".score")
    if detector and isinstance(ev.value, float | int) and 0.0 <= ev.value <= 1.0:
        return (
            "An AI-image detector, trained on real and AI-made pictures, rates it "
            f"{percent(float(ev.value))} likely to be AI-made."
        )
    if ev.kind.startswith("clip.") or detector:
        return "An AI-image detector gave its score; see the technical detail."
    return "One of the checks found this; see the technical detail."


def plain_summary(report: Report) -> PlainSummary:
    return PlainSummary(
        verdict=plain_verdict(report),
        evidence=_points(report),
        where=_where(report),
        caveats=_caveats(report),
    )


def _points(report: Report) -> list[PlainPoint]:
    if report.verdict.decided_by == "none":
        return []
    owners = {(ev.kind, ev.summary): r for r in report.experts for ev in r.evidence}
    points: list[PlainPoint] = []
    seen: set[str] = set()
    for ev in report.key_evidence:
        if ev.kind in CONTEXT_KINDS and ev.proves is None:
            continue
        owner = owners.get((ev.kind, ev.summary))
        text = plain_point(ev)
        weak = owner is not None and owner.score is not None and owner.score < SUSPICIOUS_SCORE
        if owner is not None and weak and ev.proves is None:
            if not ev.kind.startswith(_DETECTOR_KINDS):
                # a trace looked for and not found convincingly: say that, not what it would mean
                name = CHECK_NAMES.get(owner.expert, owner.expert)
                text = f"The {name} check found nothing convincing."
        if text in seen:
            continue  # two findings of one kind read the same in plain words
        seen.add(text)
        points.append(PlainPoint(text, ev.summary, owner.expert if owner else None))
    return points[:MAX_POINTS]


_DETECTOR_KINDS = ("clip.generated", "copy_move.none", "noise.none", "learned_localizer.none")


def _where(report: Report) -> list[str]:
    v, regions = report.verdict, report.regions
    if not regions:
        if v.leaning == "tampered" and v.decided_by != "none":
            return ["No single area stands out, so the edit could not be located."]
        if v.leaning == "ai_generated" and v.decided_by != "none":
            return ["The whole picture is in question, not one area."]
        return []
    lines = []
    if v.leaning == "real":
        noun = "area" if len(regions) == 1 else "areas"
        lines.append(
            f"The map marks {len(regions)} {noun}, but taken together the checks do not find "
            "them convincing."
        )
    for region in regions[:MAX_AREAS]:
        face = f", on {region.on_face}" if region.on_face else ""
        lines.append(
            f"Area {region.id}: {region.relative_position} of the picture{face}, "
            f"{region.size_words}."
        )
    if len(regions) > MAX_AREAS:
        lines.append(f"{len(regions) - MAX_AREAS} more areas are listed in the technical detail.")
    for pair in copy_move_pairs(report):
        ids = sorted({*pair.regions_a, *pair.regions_b})
        if len(ids) >= 2:
            names = " and ".join(", ".join(str(i) for i in ids).rsplit(", ", 1))
            lines.append(f"Areas {names} are copy pair {pair.number}: one is a copy of the other.")
    return lines


def _caveats(report: Report) -> list[str]:
    v = report.verdict
    notes = []
    if v.decided_by != "none" and not v.calibrated and v.decided_by != "provenance":
        notes.append(
            "The percentage is Forenscope's own score; it has not been confirmed as a "
            "real-world probability."
        )
    if not v.decided and v.decided_by != "none":
        notes.append(
            "Most pictures get 'needs review': Forenscope decides only when its tests show it "
            "is right at least 9 times in 10 for that answer."
        )
    if v.conflicts:
        noun = "piece" if len(v.conflicts) == 1 else "pieces"
        notes.append(
            f"{len(v.conflicts)} {noun} of evidence point the other way (see the technical detail)."
        )
    skipped = [r for r in report.experts if not r.judged]
    if skipped and v.decided_by != "none":
        notes.append(
            f"{len(skipped)} of {len(report.experts)} checks did not apply to this image or could "
            "not run (for example, a face check when there is no face)."
        )
    basis = report.attribution.basis
    if v.leaning != "real" and "whole image is implicated" in basis and report.regions:
        notes.append("The marked areas are spread out: the whole picture may be affected.")
    notes.append(
        "Automatic checks can miss an edit and can flag an honest photo: treat this as a lead, "
        "not as proof."
    )
    return notes
