"""`forenscope llm ...` and `forenscope chat IMAGE`: entry points (layer 10) over the mllm engine;
the main CLI attaches them on first use."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .mllm.examples import IMAGE_SUFFIXES
from .mllm.protocols import protocol_option

if TYPE_CHECKING:
    from .mllm.chat import ChatSession

_IMAGE_ARGS = click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))


def _expand(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def _load(config: str | None) -> Any:
    from .errors import ConfigError
    from .mllm.config import load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        raise click.UsageError(f"{exc} (use --config or FORENSCOPE_LLM_BASE_URL/MODEL)") from None


def _emit(rows: Sequence[dict[str, Any]], out: str | None) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


config_option = click.option(
    "--config",
    "config",
    type=click.Path(exists=True),
    default=None,
    help="JSON/YAML LLM config (env FORENSCOPE_LLM_* overrides)",
)
_FROM_CONFIG = " [default: the config's pipeline value]"
detect_options = [
    click.option(
        "--variant",
        type=click.IntRange(1, 5),
        default=None,
        help="stage-1 prompt variant" + _FROM_CONFIG,
    ),  # fmt: skip
    click.option(
        "--k",
        "k",
        type=click.IntRange(0, 16),
        default=None,
        help="k-shot examples drawn from --pool" + _FROM_CONFIG,
    ),
    click.option(
        "--pool",
        type=click.Path(exists=True),
        default=None,
        help="folder with real/ and fake/ or a CSV/JSON manifest" + _FROM_CONFIG,
    ),
    click.option("--seed", type=int, default=None, help="k-shot draw seed" + _FROM_CONFIG),
    click.option(
        "--scoring",
        type=click.Choice(["votes", "logprobs", "auto"]),
        default=None,
        help="votes = seed 000's mean of n answers" + _FROM_CONFIG,
    ),  # fmt: skip
    click.option(
        "--n", "n", type=click.IntRange(1, 64), default=None, help="votes per image" + _FROM_CONFIG
    ),  # fmt: skip
    click.option("--temperature", type=float, default=None, help="sampling" + _FROM_CONFIG),
    protocol_option(),
]
prompts_option = click.option(
    "--prompts",
    "prompts",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="prompt-set TOML file (see `forenscope llm prompts`)" + _FROM_CONFIG,
)


def _with_detect_options(f: Any) -> Any:
    for opt in reversed(detect_options):
        f = opt(f)
    return f


async def _safe(path: Path, call: Awaitable[Any]) -> dict[str, Any]:
    """One output row; an unreadable image becomes an error row instead of ending the batch."""
    from .errors import InputError

    try:
        result = await call
    except (OSError, ValueError, InputError) as exc:
        return {"path": str(path), "error": {"type": type(exc).__name__, "message": str(exc)}}
    return {"path": str(path), **result.model_dump()}


@click.group("llm")
def llm_cli() -> None:
    """Ask a multimodal LLM (any OpenAI-compatible endpoint) about images."""


def _engine_run(
    config: str | None, changes: dict[str, Any], job: Any, protocol: str | None = None
) -> Any:
    """Run `job(engine)` on the config whose pipeline block is changed by a preset and the
    command's options (None = keep), validated as the config file is."""
    from .errors import ConfigError
    from .mllm.examples import ExamplePool
    from .mllm.prompts import load_prompts
    from .mllm.protocols import resolve_pipeline
    from .mllm.runner import MLLMEngine

    cfg = _load(config)
    try:
        pipeline, _ = resolve_pipeline(cfg.pipeline, protocol, changes)
        cfg = cfg.model_copy(update={"pipeline": pipeline})
        prompt_set = load_prompts(pipeline.prompts)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    ex_pool = ExamplePool.load(pipeline.pool) if pipeline.pool else None

    async def main() -> Any:
        async with MLLMEngine(cfg, pool=ex_pool, prompts=prompt_set) as eng:
            result = await job(eng)
            return result, eng.usage

    return asyncio.run(main())


@llm_cli.command("detect")
@_IMAGE_ARGS
@config_option
@_with_detect_options
@prompts_option
@click.option("--out", type=click.Path(), default=None, help="JSON-lines file (default stdout)")
def detect_cmd(
    paths: tuple[str, ...],
    config: str | None,
    pool: str | None,
    prompts: str | None,
    out: str | None,
    **opts: Any,
) -> None:
    """Stage 1: probability that each image is AI-generated or tampered."""
    files = _expand(paths)

    async def job(eng: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_safe(p, eng.adetect(p)) for p in files)))

    protocol = opts.pop("protocol")
    rows, usage = _engine_run(config, {**opts, "pool": pool, "prompts": prompts}, job, protocol)
    _emit(rows, out)
    click.echo(f"usage: {usage.model_dump_json()}", err=True)


@llm_cli.command("analyze")
@_IMAGE_ARGS
@config_option
@click.option("--evidence", multiple=True, help="expert evidence text shown to the LLM (repeat)")
@prompts_option
@click.option("--out", type=click.Path(), default=None)
def analyze_cmd(
    paths: tuple[str, ...],
    config: str | None,
    evidence: tuple[str, ...],
    prompts: str | None,
    out: str | None,
) -> None:
    """Stage 2: where, what, which traces and which method, as a JSON object per image."""
    files = _expand(paths)

    async def job(eng: Any) -> list[dict[str, Any]]:
        calls = (_safe(p, eng.aanalyze(p, evidence=evidence)) for p in files)
        return list(await asyncio.gather(*calls))

    rows, usage = _engine_run(config, {"prompts": prompts}, job)
    _emit(rows, out)
    click.echo(f"usage: {usage.model_dump_json()}", err=True)


# The British spelling still works for scripts written before the API said "analyze".
llm_cli.add_command(
    click.Command(
        "analyse",
        params=analyze_cmd.params,
        callback=analyze_cmd.callback,
        help="Alias of `analyze`.",
        hidden=True,
    )
)


@llm_cli.command("run")
@_IMAGE_ARGS
@config_option
@_with_detect_options
@prompts_option
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@click.option(
    "--stage2-min",
    type=float,
    default=0.5,
    show_default=True,
    help="run stage 2 when P(fake) >= this; negative = always",
)
def run_cmd(
    paths: tuple[str, ...],
    config: str | None,
    pool: str | None,
    prompts: str | None,
    out_dir: str,
    stage2_min: float,
    **opts: Any,
) -> None:
    """Stage 1 then stage 2 on files/folders; one JSON per image plus summary.json."""
    files = _expand(paths)
    floor = None if stage2_min < 0 else stage2_min

    async def job(eng: Any) -> list[Any]:
        return list(await eng.arun(files, stage2_min_probability=floor))

    protocol = opts.pop("protocol")
    runs, usage = _engine_run(config, {**opts, "pool": pool, "prompts": prompts}, job, protocol)
    dest = Path(out_dir)
    dest.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for i, run in enumerate(runs):
        name = f"{i:05d}_{Path(run.path).stem}.json"
        (dest / name).write_text(run.model_dump_json(indent=1), encoding="utf-8")
        key = "input_error" if run.error else (run.stage1.status if run.stage1 else "missing")
        counts[key] = counts.get(key, 0) + 1
        click.echo(f"{run.path}: {_run_line(run)} -> {dest / name}", err=True)
    summary = {"images": len(runs), "stage1": counts, "usage": usage.model_dump()}
    (dest / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    click.echo(json.dumps(summary))


def _run_line(run: Any) -> str:
    """One image's outcome in words: stage 1's P(fake) or why there is none, stage 2's status."""
    if run.error is not None:
        return f"input error: {run.error.message}"
    s1 = run.stage1
    if s1 is None:
        return "no stage 1 result"
    p = f"P(fake) {s1.probability:.2f}" if s1.probability is not None else "no probability"
    stage2 = run.stage2.status if run.stage2 is not None else "not run"
    return f"stage 1 {s1.status}, {p} ({s1.yes} yes, {s1.no} no); stage 2 {stage2}"


@llm_cli.command("prompts")
@click.option("--check", "check", type=click.Path(exists=True, dir_okay=False), default=None,
              help="validate this prompt file and print what it renders")  # fmt: skip
def prompts_cmd(check: str | None) -> None:
    """Print the shipped prompt set (TOML, a start for your own), or check one of yours."""
    from .errors import ConfigError
    from .mllm.prompts import PromptSet, shipped_text

    if check is None:
        click.echo(shipped_text(), nl=False)
        return
    try:
        prompts = PromptSet.load(check)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for variant in prompts.variants:
        tpl = prompts.stage1(variant)
        click.echo(f"## stage 1, variant {variant} ({tpl.version}, sha256 {tpl.sha256[:12]})")
        click.echo(f"[system]\n{tpl.system or '(none)'}\n[user]\n{tpl.user}\n")
    tpl = prompts.stage2(["an example evidence line"])
    click.echo(f"## stage 2 ({tpl.version}, sha256 {tpl.sha256[:12]})")
    click.echo(f"[system]\n{tpl.system or '(none)'}\n[user]\n{tpl.user}")
    for note in prompts.notes:
        click.echo(f"note: {note}", err=True)


@llm_cli.command(
    "fake-server",
    # --help goes to the server's own parser, which lists its options (--port, --faults, ...)
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def fake_server_cmd(args: tuple[str, ...]) -> None:
    """Run the local fault-injecting OpenAI-compatible test server; `forenscope llm fake-server
    --help` lists its options (--port, --faults, --script, ...)."""
    from .mllm.fake_server import main

    argv0 = sys.argv[0]
    sys.argv[0] = "forenscope llm fake-server"  # argparse names its usage line after argv[0]
    try:
        main(list(args))
    finally:
        sys.argv[0] = argv0


def default_history(image: Path) -> Path:
    """<cache>/chats/<stem>-<hash of the image's absolute path>.chat.json: the same image
    resumes its conversation, and nothing is written into the folder holding the evidence."""
    import hashlib

    from .models.cache import cache_dir

    key = hashlib.sha256(str(image.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "chats" / f"{image.stem}-{key}.chat.json"


def _grounding(image: str, report_path: str | None, experts: str | None) -> list[str]:
    """The chat's grounding: a saved report JSON, or a fresh offline analysis of the image."""
    from .errors import ForenscopeError
    from .mllm.chat import report_grounding
    from .pipeline import analyze
    from .types import Report

    try:
        if report_path:
            report = Report.model_validate_json(Path(report_path).read_text(encoding="utf-8"))
        else:
            names = [n.strip() for n in experts.split(",") if n.strip()] if experts else None
            report = analyze(image, experts=names)
    except (ForenscopeError, ValueError) as exc:
        raise click.ClickException(f"cannot build the grounding report: {exc}") from None
    return report_grounding(report)


def _clip_session(
    clip: str, history: str | None, report_path: str | None, experts: str | None,
    evidence: tuple[str, ...],
) -> ChatSession:  # fmt: skip
    """The chat about a video clip: its keyframe sheet and temporal evidence (video/llm.py),
    resuming the conversation `forenscope video --ask` began on the same clip."""
    from .errors import ForenscopeError
    from .types import VideoReport
    from .video.llm import open_clip_chat

    names = [n.strip() for n in experts.split(",") if n.strip()] if experts else None
    try:
        report = None
        if report_path:
            report = VideoReport.model_validate_json(Path(report_path).read_text(encoding="utf-8"))
        session = open_clip_chat(Path(clip), history=Path(history) if history else None,
                                 report=report, experts=names, extra=evidence)  # fmt: skip
    except (ForenscopeError, ValueError) as exc:
        raise click.ClickException(f"cannot build the grounding report: {exc}") from None
    click.echo(f"conversation kept in {session.path}", err=True)
    return session


@click.command("chat")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@config_option
@click.option(
    "--history",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON history file (default: one per image under the Forenscope cache folder, "
    "never next to the image: evidence folders stay untouched)",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="ground on this report JSON, an image's or a clip's (default: analyse the image or "
    "clip offline first)",
)
@click.option("--experts", default=None, help="experts for that analysis (comma-separated)")
@click.option("--evidence", multiple=True, help="extra evidence to ground on (repeat)")
@click.option("--message", "-m", default=None, help="ask one question and exit")
def chat_cli(
    image: str,
    config: str | None,
    history: str | None,
    report_path: str | None,
    experts: str | None,
    evidence: tuple[str, ...],
    message: str | None,
) -> None:
    """Ask follow-up questions about an image, grounded on its full report (verdict, experts,
    evidence, regions); the conversation is kept in a JSON file and resumed. A video clip is
    shown as a sheet of keyframes, grounded on its clip report (temporal findings with their
    frames and seconds, face tracks), and resumes the chat `forenscope video --ask` began."""
    from .errors import InputError
    from .mllm.chat import ChatSession
    from .mllm.errors import LLMError
    from .video.dispatch import is_clip

    cfg = _load(config)
    if is_clip(Path(image)):
        session = _clip_session(image, history, report_path, experts, evidence)
    else:
        path = Path(history) if history else default_history(Path(image))
        path.parent.mkdir(parents=True, exist_ok=True)
        click.echo(f"conversation kept in {path}", err=True)
        session = ChatSession.open(path, Path(image), [])
        if not session.evidence:  # a new conversation: analyse once, then the history keeps it
            session.evidence = [*_grounding(image, report_path, experts), *evidence]
    questions = [message] if message else (line.strip() for line in sys.stdin)
    for q in questions:
        if not q or q in ("exit", "quit"):
            break
        try:
            answer = asyncio.run(session.ask(cfg, q))
        except (InputError, LLMError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(answer)
