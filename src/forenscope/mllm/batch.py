"""`forenscope analyze --llm CONFIG`: the batch of `forenscope.batch` with the MLLM stages.

Same outputs, index and resume rules as the offline batch (its helpers are reused); each report
also carries `llm`. Kept apart because `forenscope.batch.analyze_file` has no LLM parameter:
once it grows one, this module reduces to passing it through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path

from ..batch import Outcome, _failure, _file_sha256, _record, read_index
from .config import LLMConfig


def analyze_file_llm(
    path: str,
    out_dir: str | None,
    formats: tuple[str, ...],
    experts: tuple[str, ...] | None,
    threshold: float,
    llm: LLMConfig,
    threads: int | None = None,
) -> Outcome:
    """One file: experts, fusion, localization, LLM stages, reports; errors come back as values."""
    from ..io import load_image
    from ..pipeline import analyze_image

    sha = None
    outputs: dict[str, str] = {}
    try:
        sha = _file_sha256(Path(path))
        image = load_image(path)
        report = analyze_image(
            image, experts=experts, threshold=threshold, threads=threads, llm=llm
        )
        if out_dir is not None:
            from ..report import write_report

            target = Path(out_dir) / f"{Path(path).stem}-{report.image.sha256[:10]}"
            written = write_report(report, image, target, formats=formats)
            outputs = {k: str(v) for k, v in written.items()}
    except Exception as exc:  # bad input or a bug costs this one file, never the batch
        return _failure(path, sha, exc)
    verdict = report.verdict
    summary = f"{verdict.label} (p={verdict.probability:.2f})"
    if report.llm is not None:
        p = report.llm.stage1.probability
        llm_says = f"{p:.2f}" if p is not None else report.llm.stage1.status
        summary += f"; LLM P(fake) {llm_says} ({report.llm.verdict_agreement})"
    return Outcome(
        path=path, status="clean" if verdict.label == "real" else "suspicious",
        sha256=report.image.sha256, label=verdict.label, probability=verdict.probability,
        summary=summary, outputs=outputs, report_json=report.model_dump_json(),
    )  # fmt: skip


def _pending(paths: Sequence[Path], out_dir: Path | None) -> list[str]:
    pending = [str(p) for p in paths]
    if out_dir is None:
        return pending
    out_dir.mkdir(parents=True, exist_ok=True)
    done = read_index(out_dir)
    keep = []
    for p in pending:
        try:
            key = (str(Path(p).resolve()), _file_sha256(Path(p)))
        except OSError:
            key = (str(Path(p).resolve()), "")
        if key not in done:
            keep.append(p)
    return keep


def analyze_batch_llm(
    paths: Sequence[Path],
    llm: LLMConfig,
    *,
    out_dir: Path | None = None,
    formats: tuple[str, ...] = ("json", "md", "html"),
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    jobs: int = 1,
) -> Iterator[Outcome]:
    """Yield one Outcome per file, in completion order; resumes from `out_dir`'s index."""
    pending = _pending(paths, out_dir)
    out = str(out_dir) if out_dir is not None else None
    if jobs <= 1:
        for p in pending:
            yield _record(out_dir, analyze_file_llm(p, out, formats, experts, threshold, llm))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[Outcome], str] = {
            pool.submit(analyze_file_llm, p, out, formats, experts, threshold, llm, 1): p
            for p in pending
        }
        for fut in as_completed(futures):
            try:
                outcome = fut.result()
            except Exception as exc:  # a crashed worker costs one file, not the batch
                outcome = _failure(futures[fut], None, exc)
            yield _record(out_dir, outcome)
