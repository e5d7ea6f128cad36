"""The command line: parses arguments, calls the API, prints. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import import_module
from itertools import chain
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_text import json_line, terminal_safe
from .errors import ForenscopeError

EXIT_CLEAN, EXIT_SUSPICIOUS, EXIT_USAGE, EXIT_ERRORS, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4
FORMATS = ("json", "md", "html")


def _split(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _jobs(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """`-j`: a number of processes, or `auto` (None: settled from the files, see
    `parallelism.auto_jobs`)."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise click.BadParameter(f"{value!r} is neither a positive number of processes nor 'auto'")


# Every command is loaded when it runs, so `--version` and `--help` import neither numpy, Pillow,
# pydantic nor a model runtime (issue 15: cold start). name -> (module, attribute, the short
# help `--help` lists; tests/test_import_light.py checks it is the command's own).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "analyze": (__name__, "analyze_command", "Analyse image files, folders or glob patterns."),
    "chat": (".llm_cli", "chat_cli", "Ask follow-up questions about an image, grounded on its "
             "full report (verdict, experts, evidence, regions); the conversation is kept in a "
             "JSON file and resumed."),
    "demo": (__name__, "demo_command", "Analyse the shipped CC0 photo and a tampered copy of it; "
             "write HTML/JSON/Markdown reports."),
    "eval": (".eval.cli", "eval_cli", "Evaluate a system on a dataset (manifest CSV/JSONL or "
             "folder) with honest protocols."),
    "experts": (__name__, "experts_command", "List the experts with their versions, licences "
                "and availability."),
    "llm": (".llm_cli", "llm_cli", "Ask a multimodal LLM (any OpenAI-compatible endpoint) "
            "about images."),
    "models": (".models.cli", "models_cli", "Model weights: fetch, verify, cache and list them."),
    "serve": (".service.cli", "serve_cmd", "Serve the API (/v1, OpenAPI at /v1/openapi.json) and "
              "the web UI (/)."),
    "serve-openai": (".service.openai.cli", "serve_openai_cmd", "Serve Forenscope as an "
                     "OpenAI-compatible vision model (/v1/chat/completions, /v1/models)."),
    "train": (".train.cli", "train_cli", "Fit a head or baseline on format-aligned images and "
              "write weights + model card."),
    "video": (".video.cli", "video_cmd", "Analyse video clips (MP4, MOV, MKV, WebM, animated GIF "
              "or WebP): sampled frames through the image experts, temporal checks, face tracks "
              "and an uncalibrated clip verdict."),
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; the listing comes from LAZY_COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None and loaded.hidden:
                continue
            # An unloaded command is listed through a stand-in holding its help text.
            shown = loaded or click.Command(name, help=LAZY_COMMANDS[name][2])
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_command(name: str) -> click.Command:
    """Import the command `name` of LAZY_COMMANDS (a factory in this module, else the object)."""
    module, attribute, _ = LAZY_COMMANDS[name]
    found: Any = getattr(import_module(module, __package__), attribute)
    command = found() if module == __name__ else found
    if not isinstance(command, click.Command):
        raise TypeError(f"{module}.{attribute} is not a click command")
    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forenscope")
def main() -> None:
    """Forenscope: is an image AI-generated or tampered, where, why and how."""


@cache
def analyze_command() -> click.Command:
    """`forenscope analyze`, built on first use because its options come from `config`."""
    from .batch import one_math_thread

    one_math_thread()  # before numpy loads (the experts run in threads of their own)
    from .config import click_options
    from .video.options import clip_options

    own = len(analyze.__click_params__)  # type: ignore[attr-defined]
    command = click.command("analyze")(click_options(clip_options(analyze)))
    added = len(command.params) - own  # listed first by click; keep them after ours, as before
    command.params = command.params[added:] + command.params[:added]
    return command


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
    default="auto",
    show_default=True,
    metavar="N|auto",
    callback=_jobs,
    help="Images analysed in parallel (processes of one expert thread each). auto: one per "
    "core with at least 4 files each, as many as the memory budget holds; fewer files, or "
    "-j 1, are analysed in this process with their experts in threads.",
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
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Say on stderr what the analysis does: the models loading, then each expert as it "
    "finishes. Default: on a terminal, unless --json.",
)
def analyze(
    paths: tuple[str, ...],
    out_dir: Path | None,
    formats: str,
    as_json: bool,
    experts: str | None,
    threshold: float,
    jobs: int | None,
    llm_config: str | None,
    timeout_s: float | None,
    progress: bool | None,
    clip_budget: int,
    clip_max_side: int,
) -> None:
    """Analyse image files, folders or glob patterns.

    Video clips among them (MP4, MOV, MKV, WebM, animated GIF or WebP) get the analysis of
    `forenscope video` (--clip-budget and --clip-max-side are its --budget and --max-side),
    and their clip verdict counts as an image's does.

    Exit status: 0 every image looks clean, 1 at least one is suspicious (AI-generated or
    tampered), 4 none is suspicious but at least one is inconclusive (needs review), 3 at least
    one file could not be analysed (the others still are), 2 usage error or nothing to analyse
    (an empty folder, a pattern that matches no file). A resumed --out run counts and exits on
    every file, those its earlier runs finished included.
    """
    from tqdm import tqdm

    from .batch import analyze_batch, finished_outcomes
    from .cli_progress import expert_progress, say_loading, step_progress
    from .experts.registry import check_expert_names
    from .parallelism import auto_jobs
    from .video.cli import llm_option
    from .video.dispatch import (
        ClipSettings,
        analyze_clip_files,
        finished_clip_outcomes,
        split_media,
    )

    fmts = _split(formats) or FORMATS
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise click.BadParameter(f"unknown format(s) {bad}; choose from {FORMATS}")
    names: tuple[str, ...] | None = None
    try:
        if experts is not None:  # given, even as "" or ",": it must name an expert
            # Deduplicated and checked (with a did-you-mean) before any work.
            names = tuple(check_expert_names(experts.split(",")))
        files, clips = split_media(paths)
        from .config import AnalysisConfig

        AnalysisConfig.current()  # a bad FORENSCOPE_* value is a usage error, before any work
    except ForenscopeError as exc:
        raise click.UsageError(terminal_safe(str(exc))) from None
    for folder in _empty_folders(paths, files + clips):
        click.echo(f"warning: no image file in {terminal_safe(folder)}", err=True)
    if not files and not clips:
        raise click.UsageError("nothing to analyse: no image file in " + _quoted(paths))

    counts = {"clean": 0, "suspicious": 0, "inconclusive": 0, "error": 0}
    llm = llm_option(llm_config)
    # -j auto (None) is settled per kind, before the index is read: it sets the memory budget
    # every file is checked against.
    clip_jobs = jobs if jobs is not None else auto_jobs(clips)
    jobs = jobs if jobs is not None else auto_jobs(files)
    clip = ClipSettings(budget=clip_budget, max_side=clip_max_side)
    # A resumed run counts (and exits on) the files it finished before, read from its index.
    earlier = []
    if out_dir is not None and out_dir.is_dir():
        earlier = finished_outcomes(
            files, out_dir, experts=names, threshold=threshold, jobs=jobs, llm=llm
        ) + finished_clip_outcomes(
            clips, out_dir, experts=names, threshold=threshold, llm=llm, settings=clip
        )
    for done in earlier:
        counts[done.status] += 1
    show = (sys.stderr.isatty() and not as_json) if progress is None else progress
    in_process = jobs <= 1 and timeout_s is None  # else the experts are reported as steps
    if show and files:
        say_loading(files)
    with tqdm(
        total=len(files) + len(clips), initial=len(earlier), unit="img", file=sys.stderr,
        disable=None,
    ) as bar:  # fmt: skip
        outcomes = chain(analyze_batch(
            files, out_dir=out_dir, formats=fmts, experts=names, threshold=threshold, jobs=jobs,
            llm=llm, timeout_s=timeout_s,
            on_expert=expert_progress(bar, bool(progress)) if show and in_process else None,
            on_step=step_progress(bar, bool(progress)) if show and not in_process else None,
        ), analyze_clip_files(
            clips, out_dir=out_dir, formats=fmts, experts=names, threshold=threshold,
            jobs=clip_jobs, llm=llm, timeout_s=timeout_s, settings=clip,
        ))  # fmt: skip
        for outcome in outcomes:
            counts[outcome.status] += 1
            if as_json and outcome.report_json is not None:
                bar.write(json_line(outcome.report_json), file=sys.stdout)
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


@cache
def experts_command() -> click.Command:
    return click.command("experts")(experts_cmd)


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


@cache
def demo_command() -> click.Command:
    from .batch import one_math_thread

    one_math_thread()  # as for analyze
    return click.command("demo")(demo)


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
