"""Batch analysis of many files: parallel, resumable, and never stopped by one bad file.

Every finished file (report written, or error recorded) is appended to `<out>/index.jsonl` and
flushed before the next one is reported, so a killed run resumes where it stopped: files already
in the index are skipped, none is analysed twice and none is lost.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import InputError

if TYPE_CHECKING:
    from .mllm.config import LLMConfig

Status = Literal["clean", "suspicious", "inconclusive", "error"]
INDEX_NAME = "index.jsonl"
IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif",
    ".heic", ".heif", ".avif",
}  # fmt: skip


@dataclass
class Outcome:
    """What happened to one input file."""

    path: str
    status: Status
    sha256: str | None = None
    label: str | None = None
    probability: float | None = None
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None
    report_json: str | None = None  # not stored in the index

    def index_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("report_json")
        return record


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files as given, folders (recursively, image suffixes only) and glob patterns, deduplicated.

    A named path that does not exist raises InputError; a pattern that matches nothing too.
    """
    found: dict[Path, None] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                    found[p] = None
        elif path.exists():
            found[path] = None
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise InputError(f"no file matches {item!r}")
            found.update(dict.fromkeys(files))
        else:
            raise InputError(f"no such file or folder: {item}")
    return list(found)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_index(out_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished entries keyed by (absolute path, sha256); a torn last line is ignored."""
    index = out_dir / INDEX_NAME
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if not index.exists():
        return done
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            done[(str(Path(rec["path"]).resolve()), rec["sha256"] or "")] = rec
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a kill mid-write; that file is simply redone
    return done


def _append_index(out_dir: Path, outcome: Outcome) -> None:
    with (out_dir / INDEX_NAME).open("a", encoding="utf-8") as f:
        f.write(json.dumps(outcome.index_record(), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def analyze_file(
    path: str,
    out_dir: str | None,
    formats: tuple[str, ...],
    experts: tuple[str, ...] | None,
    threshold: float,
    threads: int | None = None,
    llm: LLMConfig | None = None,
) -> Outcome:
    """Analyse one file (with the MLLM stages when `llm` is given) and write its reports;
    errors come back as values (runs in a worker)."""
    from .io import load_image
    from .pipeline import analyze_image

    sha = None
    outputs: dict[str, str] = {}
    try:
        sha = _file_sha256(Path(path))
        image = load_image(path)
        report = analyze_image(
            image, experts=experts, threshold=threshold, threads=threads, llm=llm
        )
        if out_dir is not None:
            from .report import write_report

            target = Path(out_dir) / f"{Path(path).stem}-{report.image.sha256[:10]}"
            written = write_report(report, image, target, formats=formats)
            outputs = {k: str(v) for k, v in written.items()}
    except Exception as exc:  # bad input or a bug costs this one file, never the batch
        return _failure(path, sha, exc)
    verdict = report.verdict
    summary = f"{verdict.label} (p={verdict.probability:.2f})"
    if not verdict.decided:
        summary = f"inconclusive, leaning {verdict.leaning} (p={verdict.probability:.2f})"
        if verdict.conflicts:
            summary += f"; conflict: {verdict.conflicts[0]}"
    if report.llm is not None:
        p = report.llm.stage1.probability
        llm_says = f"{p:.2f}" if p is not None else report.llm.stage1.status
        summary += f"; LLM P(fake) {llm_says} ({report.llm.verdict_agreement})"
    if report.regions:
        summary += f"; {len(report.regions)} region(s), first: {report.regions[0].description}"
    return Outcome(
        path=path,
        status=_status(verdict.label),
        sha256=report.image.sha256,
        label=verdict.label,
        probability=verdict.probability,
        summary=summary,
        outputs=outputs,
        report_json=report.model_dump_json(),
    )


def _status(label: str) -> Status:
    if label == "real":
        return "clean"
    return "inconclusive" if label == "inconclusive" else "suspicious"


def analyze_batch(
    paths: Sequence[Path],
    *,
    out_dir: Path | None = None,
    formats: tuple[str, ...] = ("json", "md", "html"),
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    jobs: int = 1,
    llm: LLMConfig | None = None,
) -> Iterator[Outcome]:
    """Yield one Outcome per file, in completion order; skips files already in `out_dir`'s index."""
    pending = [str(p) for p in paths]
    out = str(out_dir) if out_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        done = read_index(out_dir)
        if done:
            keep = []
            for p in pending:
                try:
                    key = (str(Path(p).resolve()), _file_sha256(Path(p)))
                except OSError:
                    key = (str(Path(p).resolve()), "")
                if key not in done:
                    keep.append(p)
            pending = keep
    if jobs <= 1:
        for p in pending:
            yield _record(out_dir, analyze_file(p, out, formats, experts, threshold, None, llm))
        return
    # Each worker analyses one image with a single expert thread: the pool parallelises images.
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[Outcome], str] = {
            pool.submit(analyze_file, p, out, formats, experts, threshold, 1, llm): p
            for p in pending
        }
        for fut in as_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:  # a crashed worker costs one file, not the batch
                outcome = _failure(futures[fut], None, exc)
            yield _record(out_dir, outcome)


def _failure(path: str, sha: str | None, exc: BaseException) -> Outcome:
    return Outcome(
        path=path, status="error", sha256=sha, summary=str(exc) or type(exc).__name__,
        error={"type": type(exc).__name__, "message": str(exc)},
    )  # fmt: skip


def _record(out_dir: Path | None, outcome: Outcome) -> Outcome:
    if out_dir is not None:
        _append_index(out_dir, outcome)
    return outcome
