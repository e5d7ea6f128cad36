"""`forenscope eval DATASET ...` and `forenscope eval ablate ...` (a click group the main CLI
attaches as `eval`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import click_options
from ..mllm.protocols import protocol_option
from .align import ALIGN_MODES, Perturbation, Preprocess


class _DefaultRun(click.Group):
    """`forenscope eval MANIFEST ...` means `forenscope eval run MANIFEST ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultRun)
def eval_cli() -> None:
    """Evaluate a system on a dataset (manifest CSV/JSONL or folder) with honest protocols."""


def _common(f: Any) -> Any:
    opts = [
        click.argument("dataset", type=click.Path(exists=True)),
        click.option(
            "--out",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="run folder (journal + reports)",
        ),
        click.option(
            "--filter", "filters", multiple=True, help="COLUMN=V[,V] or COLUMN!=V (repeatable)"
        ),
        click.option(
            "--include-cifake",
            is_flag=True,
            help="keep CIFAKE (excluded by default unless a source filter is given)",
        ),
        click.option("--sample", type=int, default=None, help="seeded random subset of N rows"),
        click.option(
            "--limit", type=int, default=None, help="first N rows after filtering/sampling"
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--align", type=click.Choice(ALIGN_MODES), default="jpeg90", show_default=True
        ),
        click.option(
            "--size", type=int, default=256, show_default=True, help="aligned side (0 = keep size)"
        ),
        click.option(
            "--perturb", multiple=True, help="jpeg:Q resize:F blur:SIGMA noise:SIGMA crop:F"
        ),
        click.option("--threshold", type=float, default=0.5, show_default=True),
        click.option("--restart", is_flag=True, help="discard the journal in --out and start over"),
        click.option(
            "--fsync",
            type=click.Choice(["always", "batch", "never"]),
            default="batch",
            show_default=True,
            help="journal durability against a machine crash (a kill -9 loses nothing in any mode)",
        ),
        click.option(
            "--pool", type=click.Path(exists=True), default=None, help="k-shot pool (LLM)"
        ),
        click.option(
            "--scoring",
            type=click.Choice(["auto", "votes", "logprobs"]),
            default=None,
            help="LLM scoring (default: the config's pipeline block)",
        ),
        click.option("--temperature", type=float, default=None, help="default: the config's"),
        protocol_option(),
        click.option(
            "--stage2",
            is_flag=True,
            help="LLM: also ask stage 2 on forged images: method and scope accuracy against the "
            "manifest's family and scope, positions against the mask",
        ),
        click.option(
            "--judge",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="LLM config (as llm:CFG takes) of a judge of stage 2's object-relative "
            "position: it sees the image with the true region outlined (needs --stage2)",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _config(kw: dict[str, Any], system: str, jobs: int = 1) -> Any:
    from .run import EvalConfig
    from .systems import LLMOptions

    filters = list(kw["filters"])
    if not kw["include_cifake"] and not any(
        f.split("!=")[0].split("=")[0].strip() == "source" for f in filters
    ):
        filters.append("source!=cifake")
    try:
        pre = Preprocess(
            kw["align"], kw["size"], tuple(Perturbation.parse(p) for p in kw["perturb"]), kw["seed"]
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if kw["restart"] and (kw["out"] / "journal.jsonl").exists():
        (kw["out"] / "journal.jsonl").unlink()
    for name in ("protocol", "stage2", "judge"):
        if kw[name] and not system.startswith("llm:"):
            raise click.BadParameter(f"--{name} applies to llm: systems", param_hint=f"--{name}")
    if kw["judge"] and not kw["stage2"]:
        raise click.BadParameter(
            "the judge scores stage-2 answers: add --stage2", param_hint="--judge"
        )
    # Unset knobs stay None: the preset, else the LLM config's `pipeline:` block decides them.
    knobs = {name: kw.get(name) for name in ("variant", "k", "n", "scoring", "temperature")}
    llm = LLMOptions(knobs, kw["protocol"], kw["stage2"], kw["judge"])
    return EvalConfig(
        kw["dataset"],
        system,
        kw["out"],
        filters,
        kw["sample"],
        kw["seed"],
        kw["limit"],
        pre,
        jobs,
        kw["threshold"],
        llm,
        kw["pool"],
        kw["fsync"],
    )


def _bar(desc: str) -> Callable[[int], Callable[[int], None]]:
    def make(total: int) -> Callable[[int], None]:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True)

        def tick(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        if total == 0:
            bar.close()
        return tick

    return make


@eval_cli.command("run")
@_common
@click.option(
    "--system",
    default="analysis",
    show_default=True,
    help="analysis | <expert> | format-only | noop | llm:<config file>",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--variant", type=click.IntRange(1, 5), default=None, help="default: the config's")
@click.option("--k", "k", type=click.IntRange(0, 16), default=None, help="default: the config's")
@click.option("--n", "n", type=click.IntRange(1, 64), default=None, help="default: the config's")
@click_options
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: the same job as Ray tasks (pip install 'forenscope[ray]')",
)
@click.option(
    "--ray-address",
    default=None,
    help="Ray cluster to join (needs --engine ray); default: a private local Ray with --jobs CPUs",
)
def run_cmd(system: str, jobs: int, engine: str, ray_address: str | None, **kw: Any) -> None:
    """Evaluate one system; prints the per-source table and writes run.json/report.md/.html."""
    from ..errors import ForenscopeError
    from .journal import JournalMismatch
    from .report import head_cols, headline_rows, md_table
    from .run import evaluate

    if ray_address and engine != "ray":
        raise click.BadParameter("needs --engine ray", param_hint="--ray-address")
    cfg = _config(kw, system, jobs)
    cfg.engine, cfg.ray_address = engine, ray_address
    try:
        rec = evaluate(cfg, progress=_bar(system))
    except (JournalMismatch, ValueError, ForenscopeError) as exc:
        raise click.ClickException(str(exc)) from None
    for w in rec["warnings"]:
        click.secho(f"WARNING: {w}", fg="red", bold=True, err=True)
    click.echo(
        f"filters: {', '.join(cfg.filters) or 'none'}; {cfg.pre.describe()}; {rec['counts']}"
    )
    click.echo(md_table(["source", *head_cols(rec["summary"])], headline_rows(rec["summary"])))
    loc = rec["summary"]["localization"]["overall"]
    if loc.get("n"):
        click.echo(
            "localization (forged only): "
            + ", ".join(f"{k}={v:.3f}" for k, v in loc.items() if isinstance(v, float))
        )
    if rec["summary"].get("usage"):
        click.echo(f"LLM usage: {rec['summary']['usage']}")
    click.echo(f"reports: {cfg.out / 'report.md'} {cfg.out / 'report.html'} {cfg.out / 'run.json'}")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


@eval_cli.command("ablate")
@_common
@click.option(
    "--config", "config", required=True, type=click.Path(exists=True), help="LLM config file"
)
@click.option("--variants", default="1,2,3,4,5", show_default=True)
@click.option("--ks", default="0,1,2,4", show_default=True)
@click.option("--ns", default="5", show_default=True, help="votes per image, e.g. 1,5")
def ablate_cmd(config: str, variants: str, ks: str, ns: str, **kw: Any) -> None:
    """Prompt variant x k-shot x n votes on an MLLM config: seed-000 tables (ACC, AUC, refusals)."""
    from ..errors import ForenscopeError
    from .ablate import ablate

    if kw["restart"] and kw["out"].exists():
        shutil.rmtree(kw["out"])
        kw["restart"] = False
    cfg = _config(kw, f"llm:{config}")
    try:
        result = ablate(cfg, _ints(variants), _ints(ks), _ints(ns), progress=_bar("ablate"))
    except (ValueError, ForenscopeError) as exc:  # JournalMismatch is a ValueError
        raise click.ClickException(str(exc)) from None
    click.echo((cfg.out / "ablation.md").read_text(encoding="utf-8"))
    click.echo(f"{len(result['cells'])} cells; tables in {cfg.out / 'ablation.md'}")
