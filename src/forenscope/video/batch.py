"""Many clips: one bad file costs only itself, and a re-run with the same output folder skips
the clips already finished (`video-index.jsonl`, one line per clip, flushed as it is written)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch import Status, append_line
from ..errors import ForenscopeError
from ..types import VideoReport
from .analyze import Progress, analyze_video
from .report import FORMATS, write_video_report

if TYPE_CHECKING:
    from ..mllm.config import LLMConfig

INDEX_NAME = "video-index.jsonl"


@dataclass
class ClipOutcome:
    path: str
    status: str  # "clean", "suspicious", "inconclusive" or "error"
    settings: str
    sha256: str | None = None
    label: str | None = None
    summary: str = ""
    seconds: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None


def settings_key(**settings: Any) -> str:
    """What changes a clip's result; a finished clip is redone when it differs."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def read_done(out_dir: Path) -> set[tuple[str, str]]:
    """(absolute path, settings) of finished clips; a line torn by a kill is ignored."""
    index = out_dir / INDEX_NAME
    done: set[tuple[str, str]] = set()
    if index.exists():
        for line in index.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done.add((str(Path(rec["path"]).resolve()), rec["settings"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def analyze_clips(
    paths: Sequence[Path],
    *,
    out_dir: Path | None = None,
    formats: Sequence[str] = FORMATS,
    progress: Progress | None = None,
    llm: LLMConfig | None = None,
    **options: Any,
) -> Iterator[tuple[ClipOutcome, VideoReport | None]]:
    """One outcome (and report, None on error) per clip not already finished in `out_dir`;
    with `llm`, stage 2 of the LLM tier runs on each clip's keyframes and evidence."""
    keyed = {k: v for k, v in options.items() if k != "limits"}
    if llm is not None:
        keyed["llm"] = llm.model_dump(mode="json")
    key = settings_key(**keyed)
    done = read_done(out_dir) if out_dir is not None else set()
    for path in paths:
        if (str(Path(path).resolve()), key) in done:
            continue
        outcome, report = _one(Path(path), key, out_dir, formats, progress, llm, options)
        if out_dir is not None:
            append_line(out_dir / INDEX_NAME, asdict(outcome))
        yield outcome, report


def clip_status(report: VideoReport) -> tuple[Status, str]:
    """(status as the image batch names it, one-line summary) of a clip's verdict."""
    v = report.verdict
    status: Status = "suspicious"
    if v.label in ("real", "inconclusive"):
        status = "clean" if v.label == "real" else "inconclusive"
    # the status word already says INCONCLUSIVE: the summary names the leaning, not the label twice
    summary = f"leaning {v.leaning}" if v.label == "inconclusive" else v.label
    return status, summary + f" (p={v.probability:.2f}); {v.basis}"


def write_clip_reports(
    report: VideoReport, path: Path, out_dir: Path | None, formats: Sequence[str]
) -> dict[str, str]:
    """The clip's reports in a folder of their own under `out_dir` (nothing when None)."""
    if out_dir is None:
        return {}
    target = out_dir / f"{path.stem}-{report.clip.sha256[:10]}"
    return {k: str(v) for k, v in write_video_report(report, target, formats=formats).items()}


def _one(
    path: Path, key: str, out_dir: Path | None, formats: Sequence[str],
    progress: Progress | None, llm: LLMConfig | None, options: dict[str, Any],
) -> tuple[ClipOutcome, VideoReport | None]:  # fmt: skip
    try:
        report = analyze_video(path, progress=progress, **options)
        if llm is not None:
            from .llm import with_llm

            report = with_llm(report, llm)
        outputs = write_clip_reports(report, path, out_dir, formats)
    except (ForenscopeError, ValueError, OSError) as exc:
        err = {"type": type(exc).__name__, "message": str(exc)}
        return ClipOutcome(str(path), "error", key, summary=str(exc), error=err), None
    status, summary = clip_status(report)
    return ClipOutcome(
        str(path), status, key, sha256=report.clip.sha256, label=report.verdict.label,
        summary=summary, seconds=report.timings.get("total_s"), outputs=outputs,
    ), report  # fmt: skip
