"""`forenscope analyze` on clips: which inputs are videos, and their analysis as batch outcomes.

Images go to `batch.analyze_batch` as before. Clips (MP4, MOV, MKV, WebM, and GIF or WebP with
more than one frame) go through `analyze_video` here and come back as the same `FileOutcome`,
appended to the same `index.jsonl`, so one run takes a mixed folder, resumes it, and exits on a
clip's verdict the way it does on an image's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch import (
    FileOutcome,
    WorkerPool,
    batch_config_key,
    expand_inputs,
    failure_outcome,
    read_index,
    record_outcome,
    run_in_pool,
)
from ..errors import ForenscopeError
from .options import DEFAULT_BUDGET, DEFAULT_MAX_SIDE

if TYPE_CHECKING:
    from ..mllm.config import LLMConfig
    from ..types import Report, VideoReport

# Always clips; GIF and WebP are clips only when animated (a still one stays an image).
CLIP_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm"})
ANIMATABLE_SUFFIXES = frozenset({".gif", ".webp"})
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska / WebM
# ISO-BMFF brands of video files; HEIC and AVIF stills share the "ftyp" box, not these brands.
VIDEO_BRANDS = frozenset({b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
                          b"qt  ", b"M4V ", b"avc1", b"3gp4", b"3gp5", b"3gp6", b"dash",
                          b"mmp4", b"f4v "})  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ClipSettings:
    """The video-only settings of `analyze` (the frame budget and the analysed frame size)."""

    budget: int = DEFAULT_BUDGET
    max_side: int = DEFAULT_MAX_SIDE


def is_clip(path: Path) -> bool:
    """True for a video container (by suffix, or by its first bytes when the suffix says
    nothing) and for an animated GIF or WebP. A file that cannot be read is not a clip: the
    image loader then gives its clear error."""
    suffix = path.suffix.lower()
    if suffix in CLIP_SUFFIXES:
        return True
    try:
        head = _head(path, 16)
    except (ForenscopeError, OSError):
        return False
    if suffix in ANIMATABLE_SUFFIXES or head[:6] in (b"GIF87a", b"GIF89a"):
        return _animated(path)
    return head[:4] == EBML_MAGIC or (head[4:8] == b"ftyp" and head[8:12] in VIDEO_BRANDS)


def split_media(items: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(images, clips) of files, folders and glob patterns, as `batch.expand_inputs` finds them
    plus the video files in the folders; InputError for a path that does not exist."""
    found = dict.fromkeys(expand_inputs(items))
    for item in items:
        if Path(item).is_dir():
            videos = (p for p in Path(item).rglob("*") if p.suffix.lower() in CLIP_SUFFIXES)
            found.update(dict.fromkeys(sorted(p for p in videos if p.is_file())))
    clips = {p for p in found if is_clip(p)}
    return [p for p in found if p not in clips], [p for p in found if p in clips]


def analyze_media(source: str | os.PathLike[str], **options: Any) -> Report | VideoReport:
    """`forenscope.analyze` for a file that may be a clip: a VideoReport for a clip (options of
    `analyze_video`), else the image's Report (options of `forenscope.analyze`)."""
    if is_clip(Path(source)):
        from .analyze import analyze_video

        return analyze_video(source, **options)
    from ..pipeline import analyze

    return analyze(source, **options)


def clip_config_key(
    experts: Sequence[str] | None, threshold: float, llm: LLMConfig | None, settings: ClipSettings
) -> str:
    """The image batch's settings key plus the frame budget and size: a clip analysed under
    other settings is analysed again on resume."""
    from ..config import config_key

    base = batch_config_key(experts, threshold, llm)
    return config_key({"images": base, "clip": dataclasses.asdict(settings)})


def analyze_clip_file(
    path: str,
    out_dir: str | None,
    formats: tuple[str, ...],
    experts: tuple[str, ...] | None,
    threshold: float,
    threads: int | None,
    llm: LLMConfig | None,
    settings: ClipSettings,
) -> FileOutcome:
    """Analyse one clip and write its reports; errors come back as values (runs in a worker)."""
    from .analyze import analyze_video
    from .batch import clip_status, write_clip_reports

    try:
        report = analyze_video(path, budget=settings.budget, max_side=settings.max_side,
                               experts=experts, threshold=threshold, threads=threads)  # fmt: skip
        if llm is not None:
            from .llm import with_llm

            report = with_llm(report, llm)
        outputs = write_clip_reports(report, Path(path), _path(out_dir), formats)
    except Exception as exc:  # bad input or a bug costs this one clip, never the batch
        return failure_outcome(path, exc, _sha256(path))
    status, summary = clip_status(report)
    seconds = report.timings.get("total_s")
    return FileOutcome(
        path=path, status=status, sha256=report.clip.sha256,
        label=report.verdict.label, probability=report.verdict.probability,
        summary=f"clip: {summary}" + (f" [{seconds:.1f} s]" if seconds else ""),
        outputs=outputs, report_json=report.model_dump_json(),
    )  # fmt: skip


def analyze_clip_files(
    clips: Sequence[Path],
    *,
    out_dir: Path | None = None,
    formats: tuple[str, ...] = ("json", "md", "html"),
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    jobs: int = 1,
    llm: LLMConfig | None = None,
    timeout_s: float | None = None,
    settings: ClipSettings | None = None,
) -> Iterator[FileOutcome]:
    """One FileOutcome per clip not already in `out_dir`'s index, as `analyze_batch` does for
    images: in worker processes when `jobs > 1` or a time limit is set."""
    settings = settings or ClipSettings()
    config = clip_config_key(experts, threshold, llm, settings)
    pending = [str(p) for p in clips]
    if out_dir is not None:
        done = read_index(out_dir)
        pending = [p for p in pending if _index_key(p, config) not in done]
    out = str(out_dir) if out_dir is not None else None
    if jobs <= 1 and timeout_s is None:
        for p in pending:
            outcome = analyze_clip_file(p, out, formats, experts, threshold, None, llm, settings)
            yield record_outcome(out_dir, outcome, config)
        return
    threads = 1 if jobs > 1 else None
    tasks = ((p, (p, out, formats, experts, threshold, threads, llm, settings)) for p in pending)
    pool: WorkerPool[str, FileOutcome] = WorkerPool(analyze_clip_file, jobs, timeout_s=timeout_s)
    with pool:
        yield from run_in_pool(pool, tasks, out_dir, config)


def finished_clip_outcomes(
    clips: Sequence[Path],
    out_dir: Path,
    *,
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    llm: LLMConfig | None = None,
    settings: ClipSettings | None = None,
) -> list[FileOutcome]:
    """The outcomes `out_dir`'s index holds for `clips` under these settings (a resumed run
    skips them and counts them)."""
    done = read_index(out_dir)
    if not done:
        return []
    config = clip_config_key(experts, threshold, llm, settings or ClipSettings())
    names = {f.name for f in dataclasses.fields(FileOutcome)}
    records = [done.get(_index_key(str(p), config)) for p in clips]
    return [FileOutcome(**{k: v for k, v in r.items() if k in names}) for r in records if r]


def _head(path: Path, n: int) -> bytes:
    from ..io.image import open_regular_file
    from .limits import VideoLimits

    with open_regular_file(path, VideoLimits.from_env().max_bytes) as (fh, _size):
        return fh.read(n)


def _animated(path: Path) -> bool:
    from PIL import Image

    from ..io.image import open_regular_file
    from .limits import VideoLimits

    try:
        with open_regular_file(path, VideoLimits.from_env().max_bytes) as (fh, _size):
            with Image.open(fh) as im:
                return bool(getattr(im, "is_animated", False))
    except Exception:  # not readable as GIF/WebP: the image loader says why
        return False


def _sha256(path: str) -> str | None:
    """The file's sha256, None when it cannot be read (as a regular file within the limit)."""
    from ..io.image import regular_file_sha256
    from .limits import VideoLimits

    try:
        return regular_file_sha256(Path(path), VideoLimits.from_env().max_bytes)
    except (OSError, ForenscopeError):
        return None


def _index_key(path: str, config: str) -> tuple[str, str, str]:
    # a clip that cannot be read matches its recorded error, if any
    return (str(Path(path).resolve()), _sha256(path) or "", config)


def _path(out_dir: str | None) -> Path | None:
    return Path(out_dir) if out_dir is not None else None
