"""The LLM tier on a clip: keyframes as one numbered sheet, the clip's evidence as E-lines.

Stage 2 (the structured analysis of `mllm`) is shown a sheet of up to MAX_KEYFRAMES sampled
frames, each labelled with its frame number and time, and E-lines that say what the sheet is,
the clip verdict, each keyframe's own verdict and top evidence, the temporal findings (each
says where and when, in frames and seconds), the face tracks (with their blink rate) and the
container provenance. The same lines ground a chat, so "when does the face change?" has the
frames and seconds to answer from. The clip verdict is never replaced by the LLM's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..types import ClipLLM, FrameResult, Stage2Result, VideoReport
from ..types.llm import EvidenceItem

if TYPE_CHECKING:
    from ..mllm.chat import ChatSession
    from ..mllm.config import LLMConfig

MAX_KEYFRAMES = 4
TILE = 384  # a keyframe's longer side on the sheet
LABEL_H = 22  # the black band above each keyframe with its panel number, frame and time
MAX_LINES = 24  # E-lines shown at most (sheet, verdict and keyframes come first)
MAX_TEMPORAL = 10


def keyframes(report: VideoReport, limit: int = MAX_KEYFRAMES) -> list[FrameResult]:
    """The sampled frames the LLM sees, in time order: first those nearest the temporal
    findings that suggest a class, then the most suspicious by frame verdict."""
    frames = [fr for fr in report.frames if fr.rgb is not None]
    chosen: dict[int, FrameResult] = {}
    for f in sorted(report.temporal, key=lambda f: -f.strength):
        if f.suggests is None or not frames or len(chosen) >= limit:
            continue
        mid = (f.frame_start + f.frame_end) / 2
        near = min(frames, key=lambda fr: abs(fr.index - mid))
        chosen.setdefault(near.index, near)
    for fr in sorted(frames, key=_suspicion, reverse=True):
        if len(chosen) >= limit:
            break
        chosen.setdefault(fr.index, fr)
    return sorted(chosen.values(), key=lambda fr: fr.index)


def _suspicion(fr: FrameResult) -> float:
    p = fr.report.verdict.probabilities
    return max(p.get("ai_generated", 0.0), p.get("tampered", 0.0))


def keyframe_sheet(frames: list[FrameResult]) -> np.ndarray:
    """The keyframes tiled left to right, top to bottom (two per row from three on), each under
    a band reading "1: frame 12, 0.48 s"."""
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("no keyframe to show: the clip report holds no frame pixels")
    cols = len(frames) if len(frames) <= 2 else 2
    rows = -(-len(frames) // cols)
    tiles = []
    for n, fr in enumerate(frames, 1):
        assert fr.rgb is not None
        im = Image.fromarray(fr.rgb)
        im.thumbnail((TILE, TILE))
        tile = Image.new("RGB", (TILE, TILE + LABEL_H), (0, 0, 0))
        tile.paste(im, ((TILE - im.width) // 2, LABEL_H + (TILE - im.height) // 2))
        label = f"{n}: frame {fr.index}, {fr.time_s:.2f} s"
        ImageDraw.Draw(tile).text((6, 5), label, fill=(255, 255, 255))
        tiles.append(tile)
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + LABEL_H)), (0, 0, 0))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * TILE, (i // cols) * (TILE + LABEL_H)))
    return np.asarray(sheet)


def clip_evidence(report: VideoReport, shown: list[FrameResult]) -> list[str]:
    """The E-lines (without their ids): the sheet, the verdict, each keyframe, the temporal
    findings, the face tracks and the container provenance."""
    c, v = report.clip, report.verdict
    panels = ", ".join(
        f"{n} = frame {fr.index} ({fr.time_s:.2f} s)" for n, fr in enumerate(shown, 1)
    )
    lines = [
        f"The image is a sheet of {len(shown)} keyframe(s) of one clip ({c.width}x{c.height}, "
        f"{c.duration_s:.1f} s, {c.fps:.1f} fps, {c.frames} frames), numbered left to right, "
        f"top to bottom: {panels}",
        f"Clip verdict (an uncalibrated aggregation of the frame verdicts): {v.label}"
        + (f", leaning {v.leaning}" if v.label == "inconclusive" else "")
        + f" (p={v.probability:.2f}); {v.basis}",
    ]
    for n, fr in enumerate(shown, 1):
        fv = fr.report.verdict
        line = f"Panel {n}, frame {fr.index} ({fr.time_s:.2f} s): frame verdict {fv.label} "
        line += f"(p={fv.probability:.2f})"
        if fr.report.key_evidence:
            line += f"; top evidence: {fr.report.key_evidence[0].summary}"
        if fr.report.regions:
            line += f"; {fr.report.regions[0].description}"
        lines.append(line)
    temporal = sorted(report.temporal, key=lambda f: (f.suggests is None, -f.strength))
    lines += [f"Temporal ({f.kind}): {f.summary}" for f in temporal[:MAX_TEMPORAL]]
    lines += [f"Face track: {t.summary}" for t in report.face_tracks]
    lines += [f"Container: {e.summary}" for e in report.provenance if e.proves is not None]
    return lines[:MAX_LINES]


def with_llm(report: VideoReport, config: LLMConfig) -> VideoReport:
    """The report with stage 2's answer on its keyframes and evidence, and a paragraph about it
    in the explanation. Call failures and refusals are recorded, never raised."""
    from ..mllm.assess import resolve_citations
    from ..mllm.errors import LLMError
    from ..mllm.runner import analyze

    shown = keyframes(report)
    lines = clip_evidence(report, shown)
    try:
        stage2 = analyze(keyframe_sheet(shown), config, evidence=lines)
    except (LLMError, ValueError) as exc:
        stage2 = Stage2Result(
            status="error", problem=f"{type(exc).__name__}: {exc}", prompt_version="",
            model=config.model, evidence_shown=lines,
        )  # fmt: skip
    items = [EvidenceItem(id=f"E{i}", text=t, source="region") for i, t in enumerate(lines, 1)]
    cited, unknown = resolve_citations(stage2.answer.cited_evidence if stage2.answer else [], items)
    llm = ClipLLM(model=config.model, keyframes=[fr.index for fr in shown], evidence_shown=lines,
                  stage2=stage2, cited_evidence=[e.id for e in cited],
                  unknown_citations=unknown)  # fmt: skip
    paragraph = llm_paragraph(llm)
    return report.model_copy(
        update={"llm": llm, "explanation": f"{report.explanation}\n\n{paragraph}".strip()}
    )


def llm_paragraph(llm: ClipLLM) -> str:
    """What the LLM said about the clip, in words, next to (never instead of) the verdict."""
    s2 = llm.stage2
    frames = ", ".join(str(f) for f in llm.keyframes)
    if s2.answer is None:
        why = s2.problem or s2.status
        return (
            f"An LLM ({llm.model}) was shown keyframes {frames}; it gave no usable analysis "
            f"({why})."
        )
    a = s2.answer
    where = a.location.relative or a.location.absolute or "no place named"
    text = (
        f"An LLM ({llm.model}), shown keyframes {frames} and the evidence above, says: "
        f"{a.forged_content or 'nothing forged named'} ({where}; method {a.method}, scope "
        f"{a.scope})."
    )
    if llm.cited_evidence:
        text += f" It cites {', '.join(llm.cited_evidence)}."
    return text + " The clip verdict stays the experts' own."


def clip_grounding(report: VideoReport) -> list[str]:
    """A chat's grounding: the E-lines stage 2 saw (or would see), and its answer."""
    lines = (
        list(report.llm.evidence_shown)
        if report.llm is not None
        else clip_evidence(report, keyframes(report))
    )
    if report.llm is not None:
        lines.append(llm_paragraph(report.llm))
    return lines


def chat_files(report: VideoReport) -> tuple[Path, Path]:
    """(history, keyframe sheet) under the Forenscope cache folder, one pair per clip content:
    `forenscope chat SHEET --history HISTORY` (or `forenscope chat CLIP`) resumes the
    conversation."""
    return chat_paths(report.clip.path or "clip", report.clip.sha256)


def chat_paths(clip: str, sha256: str) -> tuple[Path, Path]:
    """`chat_files` from the clip's name and content hash, before any analysis."""
    from ..models.cache import cache_dir

    key = hashlib.sha256(sha256.encode()).hexdigest()[:16]
    folder = cache_dir() / "chats"
    stem = Path(clip).stem
    return folder / f"{stem}-{key}.chat.json", folder / f"{stem}-{key}.keyframes.png"


def ask(report: VideoReport, config: LLMConfig, questions: list[str]) -> list[str]:
    """Answers to `questions` about the clip, in one conversation grounded on its report and
    its keyframe sheet, kept (and resumed) in the history file of `chat_files`."""
    from ..mllm.chat import ChatSession

    history, sheet = chat_files(report)
    _write_sheet(report, sheet)
    session = ChatSession.open(history, sheet, clip_grounding(report))
    return [asyncio.run(session.ask(config, q)) for q in questions]


def open_clip_chat(
    clip: Path,
    *,
    history: Path | None = None,
    report: VideoReport | None = None,
    experts: Sequence[str] | None = None,
    extra: Sequence[str] = (),
) -> ChatSession:
    """The chat about a clip file (`forenscope chat CLIP`): the conversation kept for this
    content (by `forenscope video --ask` or an earlier chat) when there is one; else a new one
    grounded on `report` (a saved report of this clip, its keyframes decoded again) or on a
    fresh analysis of the clip, plus the `extra` lines. InputError for a file that is not a
    clip Forenscope reads, or a report of another file."""
    from ..errors import InputError
    from ..mllm.chat import ChatSession
    from .decode import open_clip

    with open_clip(clip) as opened:  # the limits, and the content hash the report holds
        sha = opened.info.sha256
    default, sheet = chat_paths(str(clip), sha)
    history = history or default
    history.parent.mkdir(parents=True, exist_ok=True)
    session = ChatSession.open(history, sheet, [])
    if session.evidence and sheet.is_file():
        return session
    if report is None:
        from .analyze import analyze_video

        report = analyze_video(clip, experts=experts)
    elif report.clip.sha256 != sha:
        raise InputError(
            f"the report is of another file ({report.clip.path}, sha256 "
            f"{report.clip.sha256[:12]}...), not of {clip} ({sha[:12]}...)"
        )
    else:
        report = with_frame_pixels(report, clip)
    _write_sheet(report, sheet)
    if not session.evidence:
        session.evidence = [*clip_grounding(report), *extra]
    return session


def with_frame_pixels(report: VideoReport, clip: Path) -> VideoReport:
    """A saved report (its JSON holds no pixels) with its sampled frames decoded again from
    the clip at the size they were analysed at, so its keyframe sheet can be drawn."""
    from .decode import open_clip

    wanted = {fr.index for fr in report.frames}
    if not wanted:
        return report
    first = report.frames[0]
    size = (first.analysed_width, first.analysed_height)
    with open_clip(clip) as opened:
        rgb = {i: px for i, _t, px in opened.frames(size=size, keep=wanted.__contains__)
               if px is not None}  # fmt: skip
    frames = [fr.model_copy(update={"rgb": rgb.get(fr.index)}) for fr in report.frames]
    return report.model_copy(update={"frames": frames})


def _write_sheet(report: VideoReport, sheet: Path) -> None:
    from PIL import Image

    sheet.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(keyframe_sheet(keyframes(report))).save(sheet)
