"""`forenscope train --manifest M --detector D`: fit a head or baseline and write its card."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import numpy as np

from ..errors import ForenscopeError
from ..learned.heads import LinearHead
from .data import ALIGN_TAG, TrainingImage, read_manifest, select, target, with_laundered_copies
from .features import clip_normalise, extract

# detector -> (feature, task, class names)
DETECTORS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "clip-generated": ("clip", "generated", ("real", "generated")),
    "clip-attribution": ("clip", "attribution", ("gan", "diffusion")),
    "fredect-generated": ("fredect", "generated", ("real", "generated")),
    "gram-generated": ("gram", "generated", ("real", "generated")),
    # every sampled patch carries its image's label; the head scores the 14x14 patch map
    "clip-patch": ("clip-patch", "generated", ("real", "generated")),
    # patches of generated regions pasted into real photos, labelled by the paste mask
    # (train/composites.py): a localizer of pasted or generated regions
    "clip-patch-composite": ("clip-patch-composite", "generated", ("real", "generated")),
    # CNNSpot-style baseline: a small CNN trained with torch on the aligned pixels (train/cnn.py)
    "cnn-generated": ("cnn", "generated", ("real", "generated")),
}
HEADS_DIR = Path(__file__).resolve().parents[1] / "models" / "heads"
# A trial run must not replace the shipped weights: they are written there only when asked for.
DEFAULT_OUT = Path("forenscope-heads")
# seeded laundered copies (downscale 0.5-1.0, JPEG q70-95; train/launder.py) added per image,
# both classes alike, for the image-level detectors; the patch heads are trained as stored
LAUNDER_COPIES = 2
NO_LAUNDER = ("clip-patch", "clip-patch-composite")


def default_launder_copies(detector: str) -> int:
    return 0 if detector in NO_LAUNDER else LAUNDER_COPIES


def features_for(samples: list[TrainingImage], feature: str, progress: bool = False) -> np.ndarray:
    x = extract(samples, feature, progress=progress).astype(np.float64)
    if feature == "clip-patch":
        return clip_normalise(x.reshape(len(samples), -1, 512))
    return clip_normalise(x) if feature == "clip" else x


def train_detector(
    manifest: Path,
    detector: str,
    *,
    seed: int,
    calibration: str,
    c: float,
    include_cifake: bool = False,
    progress: bool = False,
    launder_copies: int | None = None,
) -> tuple[LinearHead, dict[str, object], list[TrainingImage]]:
    """Fit + calibrate + evaluate one detector on a manifest; the samples returned are the
    manifest rows used (laundered copies not repeated)."""
    from .fit import train_and_calibrate

    feature, task, classes = DETECTORS[detector]
    if feature == "cnn":
        raise ForenscopeError("cnn-generated is trained by forenscope.train.cnn.train_cnn")
    k = default_launder_copies(detector) if launder_copies is None else launder_copies
    laundered = None
    if feature == "clip-patch-composite":
        if k:
            raise ForenscopeError("clip-patch-composite is trained without laundered copies")
        x, y, groups, samples = _composite_rows(manifest, seed, progress)
    else:
        samples = select(read_manifest(manifest), task, include_cifake=include_cifake)
        if len({target(s, task) for s in samples}) < 2:
            raise ForenscopeError(f"manifest {manifest} has no rows of both classes for {task}")
        views = with_laundered_copies(samples, k, seed)
        x = features_for(views, feature, progress)
        y = np.array([target(s, task) for s in views])
        groups = [s.group for s in views]
        laundered = np.array([s.launder is not None for s in views])
    if x.ndim == 3:  # patches: one row per patch, grouped with their image
        per = x.shape[1]
        x, y = x.reshape(-1, x.shape[2]), np.repeat(y, per)
        groups = [g for g in groups for _ in range(per)]
        laundered = None if laundered is None else np.repeat(laundered, per)
    head, metrics = train_and_calibrate(
        x,
        y,
        groups,
        name=detector,
        feature=feature,
        classes=classes,
        seed=seed,
        calibration=calibration,
        c=c,
        laundered=laundered,
    )
    head.meta.update(
        {"alignment": ALIGN_TAG, "seed": seed, "c": c, "task": task, "metrics": metrics}
    )
    if k:
        from .launder import TRAIN_LAUNDER

        q, sc = TRAIN_LAUNDER.quality, TRAIN_LAUNDER.scale
        head.meta["augmentation"] = (
            f"{k} laundered copies per image (both classes): downscale U[{sc[0]}, {sc[1]}] "
            f"(bilinear/bicubic/Lanczos), JPEG 4:2:0 q U{{{q[0]}..{q[1]}}}, seeded by "
            "(seed, copy, sha256), before the alignment"
        )
    if feature.startswith("clip"):
        from ..models.sources import encoder_path, file_sha256

        head.meta["encoder_sha256"] = file_sha256(encoder_path())
        head.meta["preprocessing"] = "shorter side 224 bicubic, centre crop, CLIP mean/std, L2"
    return head, metrics, samples


def _composite_rows(
    manifest: Path, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, list[str], list[TrainingImage]]:
    """Patch rows of seeded composites (CIFAKE never included) for `clip-patch-composite`."""
    from .composites import composite_patch_dataset

    try:
        data = composite_patch_dataset(manifest, seed=seed, progress=progress)
    except ValueError as exc:
        raise ForenscopeError(str(exc)) from exc
    return data.x, data.y, data.groups, data.samples


@click.command("train")
@click.option(
    "--manifest",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="manifest.csv with path,label,generator,family,... columns",
)
@click.option("--detector", required=True, type=click.Choice(sorted(DETECTORS)))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="where <detector>.json and <detector>.md (and cnn-generated.onnx) are written; to "
    f"replace a shipped head, name its folder ({HEADS_DIR}) explicitly",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--calibration", type=click.Choice(["platt", "isotonic"]), default="platt", show_default=True
)
@click.option("--c", "c", default=0.05, show_default=True, help="inverse L2 strength")
@click.option("--include-cifake", is_flag=True, help="also train on CIFAKE (32 px; off by default)")
@click.option(
    "--launder-copies",
    type=click.IntRange(min=0),
    default=None,
    help=f"seeded laundered copies per image (downscale 0.5-1.0 + JPEG q70-95), both classes "
    f"(default {LAUNDER_COPIES}; 0 for {', '.join(NO_LAUNDER)})",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="cnn-generated only: training epochs (default: the shipped model's)",
)
def train_cli(
    manifest: Path,
    detector: str,
    out: Path,
    seed: int,
    calibration: str,
    c: float,
    include_cifake: bool,
    launder_copies: int | None,
    epochs: int | None,
) -> None:
    """Fit a head or baseline on format-aligned images and write weights + model card."""
    from .card import render_head_card

    k = default_launder_copies(detector) if launder_copies is None else launder_copies
    if detector == "cnn-generated":
        _train_cnn_cli(manifest, out, seed, calibration, include_cifake, epochs, k)
        return
    try:
        head, metrics, samples = train_detector(
            manifest,
            detector,
            seed=seed,
            calibration=calibration,
            c=c,
            include_cifake=include_cifake,
            progress=True,
            launder_copies=k,
        )
    except ForenscopeError as exc:
        raise click.ClickException(str(exc)) from exc
    command = "forenscope train " + shlex.join(
        [
            "--manifest",
            str(manifest),
            "--detector",
            detector,
            "--seed",
            str(seed),
            "--calibration",
            calibration,
            "--c",
            str(c),
            "--launder-copies",
            str(k),
        ]
        + (["--include-cifake"] if include_cifake else [])
    )
    head.meta["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / f"{detector}.json")
    (out / f"{detector}.md").write_text(render_head_card(head, samples, metrics, command), "utf-8")
    click.echo(
        f"wrote {out / (detector + '.json')}: " + ", ".join(f"{k}={v}" for k, v in metrics.items())
    )


def _train_cnn_cli(
    manifest: Path,
    out: Path,
    seed: int,
    calibration: str,
    include_cifake: bool,
    epochs: int | None,
    launder_copies: int,
) -> None:
    """cnn-generated: torch training, ONNX + JSON sidecar + model card (train/cnn.py)."""
    from .cnn import CnnConfig, train_cnn, write_cnn

    epochs = epochs or CnnConfig().epochs
    command = "forenscope train " + shlex.join(
        ["--manifest", str(manifest), "--detector", "cnn-generated", "--seed", str(seed)]
        + ["--calibration", calibration, "--epochs", str(epochs)]
        + ["--launder-copies", str(launder_copies)]
        + (["--include-cifake"] if include_cifake else [])
    )
    try:
        run = train_cnn(
            manifest,
            seed=seed,
            calibration=calibration,
            epochs=epochs,
            include_cifake=include_cifake,
            progress=True,
            launder_copies=launder_copies,
        )
        out.mkdir(parents=True, exist_ok=True)
        written = write_cnn(run, out, "cnn-generated", command)
    except ForenscopeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {written}: " + ", ".join(f"{k}={v}" for k, v in run.metrics.items()))
