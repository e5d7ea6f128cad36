"""`forenscope video`: analyse clips, print one line each, write reports, resume a batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ForenscopeError
from .options import budget_option, max_side_option

if TYPE_CHECKING:
    from ..mllm.config import LLMConfig
    from ..types import VideoReport


def printable(text: str) -> str:
    """Control and format characters (ANSI escapes, bidi overrides) of a file name shown as
    escapes, so a crafted name cannot rewrite the line printed next to it."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def expand_clips(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given (a wrong type gets its clear error later); folders by video suffix."""
    from .decode import VIDEO_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            out.append(p)
    return out


def llm_option(path: str | None) -> LLMConfig | None:
    """The --llm config, or None; a bad one is a usage error (exit 2) before any work."""
    if path is None:
        return None
    from ..mllm.config import load_config

    try:
        return load_config(path)
    except ForenscopeError as exc:
        raise click.UsageError(str(exc)) from None


def _answer(
    report: VideoReport, llm: LLMConfig, questions: list[str], write: Callable[..., None]
) -> None:
    """The answers to --ask, on stdout; a failed call is an error line, the batch goes on."""
    from ..mllm.errors import LLMError
    from .llm import ask, chat_files

    try:
        answers = ask(report, llm, questions)
    except (LLMError, ForenscopeError, ValueError) as exc:
        write(printable(f"{report.clip.path}: chat failed: {exc}"), file=sys.stderr)
        return
    for q, a in zip(questions, answers, strict=True):
        for line in f"Q: {q}\nA: {a}".splitlines():
            write(printable(line), file=sys.stdout)
    history, sheet = chat_files(report)
    write(f"(go on with: forenscope chat {sheet} --history {history})", file=sys.stderr)


EXIT_CLEAN, EXIT_SUSPICIOUS, EXIT_ERRORS, EXIT_INCONCLUSIVE = 0, 1, 3, 4


@click.command("video")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write reports here (a folder per clip) and video-index.jsonl; a re-run with "
              "the same --out resumes, skipping finished clips.")  # fmt: skip
@click.option("--format", "formats", default="json,md,html", show_default=True)
@budget_option("--budget")
@max_side_option("--max-side")
@click.option("--experts", default=None, help="Comma-separated expert names (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report per line.")
@click.option("--llm", "llm_config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="LLM config (as `forenscope llm` reads it): stage 2 of the LLM tier on each "
              "clip's keyframes, with its temporal evidence as E-lines.")  # fmt: skip
@click.option("--ask", "questions", multiple=True,
              help="With --llm: a question about the clip (repeat for more), answered in a chat "
              "grounded on its report, e.g. 'when does the face change?'.")  # fmt: skip
def video_cmd(
    paths: tuple[Path, ...], out_dir: Path | None, formats: str, budget: int, max_side: int,
    experts: str | None, as_json: bool, llm_config: str | None, questions: tuple[str, ...],
) -> None:  # fmt: skip
    """Analyse video clips (MP4, MOV, MKV, WebM, animated GIF or WebP): sampled frames through
    the image experts, temporal checks, face tracks and an uncalibrated clip verdict.

    Exit status: 0 all clean, 1 a clip is suspicious, 4 none suspicious but one inconclusive,
    3 a clip could not be analysed (the others still are).
    """
    from tqdm import tqdm

    from ..experts.registry import check_expert_names
    from .batch import analyze_clips

    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    files = expand_clips(paths)
    try:
        names = tuple(check_expert_names(experts.split(","))) if experts is not None else None
    except ForenscopeError as exc:
        raise click.UsageError(str(exc)) from None
    if questions and llm_config is None:
        raise click.UsageError("--ask needs --llm CONFIG")
    llm = llm_option(llm_config)
    counts = {"clean": 0, "suspicious": 0, "inconclusive": 0, "error": 0}
    with tqdm(total=len(files) * budget, unit="frame", file=sys.stderr, disable=None) as bar:
        state = {"done": 0}

        def progress(_stage: str, done: int, total: int) -> None:
            bar.update(done - state["done"])
            state["done"] = 0 if done == total else done

        results = analyze_clips(
            files, out_dir=out_dir, formats=fmts, progress=progress, budget=budget,
            max_side=max_side, experts=names, llm=llm,
        )  # fmt: skip
        for outcome, report in results:
            counts[outcome.status] += 1
            if as_json and report is not None:
                bar.write(report.model_dump_json(), file=sys.stdout)
            elif as_json:
                bar.write(json.dumps(outcome.__dict__), file=sys.stdout)
            else:
                secs = f" [{outcome.seconds:.1f} s]" if outcome.seconds else ""
                bar.write(printable(f"{outcome.path}: {outcome.status.upper()}: "
                                        f"{outcome.summary}{secs}"))  # fmt: skip
            if report is not None and llm is not None and questions:
                _answer(report, llm, list(questions), bar.write)
    skipped = len(files) - sum(counts.values())
    tail = f", {skipped} already done (resumed from {out_dir})" if skipped else ""
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + printable(tail), err=True)
    if counts["error"]:
        sys.exit(EXIT_ERRORS)
    if counts["suspicious"]:
        sys.exit(EXIT_SUSPICIOUS)
    sys.exit(EXIT_INCONCLUSIVE if counts["inconclusive"] else EXIT_CLEAN)
