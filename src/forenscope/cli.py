"""The command line: parses arguments, calls the API, prints. Nothing else lives here."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from . import __version__
from .config import AnalysisConfig, click_options
from .errors import ForenscopeError

EXIT_CLEAN, EXIT_SUSPICIOUS, EXIT_USAGE, EXIT_ERRORS, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4
FORMATS = ("json", "md", "html")


def _split(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


# Characters a terminal may act on: C0/C1 controls (ESC starts the sequences that move the
# cursor, erase lines or retitle the window) and the bidirectional overrides that reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on shown as an escape (\\x1b), so a
    file named with ANSI sequences cannot rewrite or hide the verdict printed next to it."""
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)


def _json_line(text: str) -> str:
    """A JSON document with the same characters escaped as JSON escapes (still valid JSON)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forenscope")
def main() -> None:
    """Forenscope: is an image AI-generated or tampered, where, why and how."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write reports here (one folder per image) and an index.jsonl; a re-run "
    "with the same --out resumes, skipping finished files.",
)
@click.option(
    "--format",
    "formats",
    default="json,md,html",
    show_default=True,
    help="Report formats to write with --out.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report per line.")
@click.option("--experts", default=None, help="Comma-separated expert names (default: all).")
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Heatmap threshold for the mask and regions.",
)
@click.option(
    "-j",
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Images analysed in parallel (processes).",
)
@click.option(
    "--llm",
    "llm_config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="LLM config (YAML/JSON, as `forenscope llm` reads it): also run the MLLM stages "
    "and compare them with the experts.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=None,
    type=click.FloatRange(min=1.0),
    help="Seconds one image may take; past it its worker process is stopped and the image is "
    "an error (the others go on).",
)
@click_options
def analyze(
    paths: tuple[str, ...],
    out_dir: Path | None,
    formats: str,
    as_json: bool,
    experts: str | None,
    threshold: float,
    jobs: int,
    llm_config: str | None,
    timeout_s: float | None,
) -> None:
    """Analyse image files, folders or glob patterns.

    Exit status: 0 every image looks clean, 1 at least one is suspicious (AI-generated or
    tampered), 4 none is suspicious but at least one is inconclusive (needs review), 3 at least
    one file could not be analysed (the others still are), 2 usage error or nothing to analyse
    (an empty folder, a pattern that matches no file). A resumed --out run counts and exits on
    every file, those its earlier runs finished included.
    """
    from tqdm import tqdm

    from .batch import analyze_batch, expand_inputs, finished_outcomes
    from .experts.registry import check_expert_names

    fmts = _split(formats) or FORMATS
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise click.BadParameter(f"unknown format(s) {bad}; choose from {FORMATS}")
    names: tuple[str, ...] | None = None
    try:
        if experts is not None:  # given, even as "" or ",": it must name an expert
            # Deduplicated and checked (with a did-you-mean) before any work.
            names = tuple(check_expert_names(experts.split(",")))
        files = expand_inputs(paths)
        AnalysisConfig.current()  # a bad FORENSCOPE_* value is a usage error, before any work
    except ForenscopeError as exc:
        raise click.UsageError(terminal_safe(str(exc))) from None
    for folder in _empty_folders(paths, files):
        click.echo(f"warning: no image file in {terminal_safe(folder)}", err=True)
    if not files:
        raise click.UsageError("nothing to analyse: no image file in " + _quoted(paths))

    counts = {"clean": 0, "suspicious": 0, "inconclusive": 0, "error": 0}
    llm = None
    if llm_config is not None:
        from .mllm.config import load_config

        try:
            llm = load_config(llm_config)
        except ForenscopeError as exc:
            raise click.UsageError(str(exc)) from None
    # A resumed run counts (and exits on) the files it finished before, read from its index.
    earlier = []
    if out_dir is not None and out_dir.is_dir():
        earlier = finished_outcomes(
            files, out_dir, experts=names, threshold=threshold, jobs=jobs, llm=llm
        )
    for done in earlier:
        counts[done.status] += 1
    outcomes = analyze_batch(
        files, out_dir=out_dir, formats=fmts, experts=names, threshold=threshold, jobs=jobs,
        llm=llm, timeout_s=timeout_s,
    )  # fmt: skip
    with tqdm(total=len(files), initial=len(earlier), unit="img", file=sys.stderr,
              disable=None) as bar:  # fmt: skip
        for outcome in outcomes:
            counts[outcome.status] += 1
            if as_json and outcome.report_json is not None:
                bar.write(_json_line(outcome.report_json), file=sys.stdout)
            elif as_json:
                bar.write(json.dumps(outcome.index_record()), file=sys.stdout)
            else:
                line = f"{outcome.path}: {outcome.status.upper()}: {outcome.summary}"
                bar.write(terminal_safe(line))
            bar.update(1)
    tail = f" ({len(earlier)} of them done by an earlier run)" if earlier else ""
    click.echo(
        f"{counts['clean']} clean, {counts['suspicious']} suspicious, "
        f"{counts['inconclusive']} inconclusive, "
        f"{counts['error']} error(s){tail}"
        + (f"; reports in {terminal_safe(str(out_dir))}" if out_dir else ""),
        err=True,
    )
    if counts["error"]:
        sys.exit(EXIT_ERRORS)
    if counts["suspicious"]:
        sys.exit(EXIT_SUSPICIOUS)
    sys.exit(EXIT_INCONCLUSIVE if counts["inconclusive"] else EXIT_CLEAN)


def _empty_folders(paths: tuple[str, ...], files: list[Path]) -> list[str]:
    """The folders among `paths` that gave no image file."""
    found = [f.resolve() for f in files]
    return [
        p
        for p in paths
        if Path(p).is_dir() and not any(f.is_relative_to(Path(p).resolve()) for f in found)
    ]


def _quoted(paths: tuple[str, ...]) -> str:
    return ", ".join(terminal_safe(repr(p)) for p in paths)


@main.command("experts")
@click.option("--json", "as_json", is_flag=True, help="Print the specs as JSON.")
def experts_cmd(as_json: bool) -> None:
    """List the experts with their versions, licences and availability."""
    from .experts import expert_classes

    rows = []
    for _, cls in sorted(expert_classes().items()):
        spec = cls.spec
        missing = cls().available()
        rows.append({**spec.model_dump(), "available": missing is None, "missing": missing})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'name':<20} {'version':<8} {'kind':<11} {'targets':<13} {'licence':<28} status"
    click.echo(header)
    for r in rows:
        status = "ok" if r["available"] else f"unavailable: pip install 'forenscope[{r['extra']}]'"
        click.echo(
            f"{r['name']:<20} {r['version']:<8} {r['kind']:<11} {r['targets']:<13} "
            f"{r['licence'][:28]:<28} {status}"
        )


@main.command()
@click.option(
    "--out",
    "out_dir",
    default="forenscope-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
def demo(out_dir: Path) -> None:
    """Analyse the shipped CC0 photo and a tampered copy of it; write HTML/JSON/Markdown reports."""
    from .demo import run_demo

    for line in run_demo(out_dir):
        click.echo(line)


def _attach_subsystems() -> None:
    """Command groups of the subsystems; each imports its heavy parts only when it runs."""
    from .eval.cli import eval_cli
    from .mllm.cli import chat_cli, llm_cli
    from .models.cli import models_cli
    from .service.cli import serve_cmd
    from .service.openai.cli import serve_openai_cmd
    from .train.cli import train_cli
    from .video.cli import video_cmd

    main.add_command(eval_cli, "eval")
    main.add_command(models_cli, "models")
    main.add_command(train_cli, "train")
    main.add_command(llm_cli, "llm")
    main.add_command(chat_cli, "chat")
    main.add_command(serve_cmd, "serve")
    main.add_command(serve_openai_cmd, "serve-openai")
    main.add_command(video_cmd, "video")


_attach_subsystems()
