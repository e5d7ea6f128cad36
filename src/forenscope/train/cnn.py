"""CNNSpot-style baseline (Wang et al. 2020), trained from scratch with torch, exported to ONNX.

CNNSpot fine-tunes an ImageNet ResNet-50 with blur + JPEG augmentation. No pretrained weights
are available offline here, so this is a compact fully convolutional net (conv-BN-ReLU blocks,
the first at full resolution so high-frequency traces survive, then stride-2 blocks, global
average pooling, one linear logit) trained on random crops of the format-aligned images with
CNNSpot's augmentation (Gaussian blur and JPEG re-compression, p=0.5 each, random flips) and
scored on the full aligned image. torch is imported inside functions only.
"""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..errors import ForenscopeError, MissingDependencyError, ModelError
from ..learned.cnn import INPUT_NAME, OUTPUT_NAME, to_input
from ..learned.heads import LinearHead
from .card import Card, render
from .data import (
    ALIGN_TAG,
    TrainingImage,
    load_sample,
    read_manifest,
    select,
    target,
    with_laundered_copies,
)
from .fit import calibrate, evaluate, group_folds

TORCH_PIN = "torch==2.13.0"


@dataclass(frozen=True)
class CnnConfig:
    """Architecture and training schedule; the defaults are the shipped model's."""

    widths: tuple[int, ...] = (16, 32, 64, 64, 128)
    crop: int = 64  # train-time random crop; scoring uses the whole aligned image
    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    blur_p: float = 0.5  # CNNSpot: Gaussian blur sigma ~ U[0, 3] with p = 0.5
    jpeg_p: float = 0.5  # CNNSpot: JPEG quality ~ U[30, 100] with p = 0.5
    seed: int = 0
    # one intra-op thread: the weights then do not depend on the machine's core count, and on
    # a busy machine one thread trains faster than two spinning on each other
    threads: int = 1


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            f"training the CNN baseline (install a CPU build first: pip install {TORCH_PIN})",
            "torch",
            "cnn",
        ) from exc
    return torch


def build_net(widths: tuple[int, ...]) -> Any:
    """conv3x3-BN-ReLU blocks (first stride 1, then stride 2) -> global mean -> linear logit."""
    torch = import_torch()
    nn = torch.nn

    class SmallCnn(nn.Module):  # type: ignore[misc,name-defined]  # torch is Any
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            c = 3
            for k, w in enumerate(widths):
                stride = 1 if k == 0 else 2
                layers += [nn.Conv2d(c, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w)]
                layers.append(nn.ReLU(inplace=True))
                c = w
            self.features = nn.Sequential(*layers)
            self.fc = nn.Linear(c, 1)

        def forward(self, x: Any) -> Any:
            x = x / 127.5 - 1.0  # input is 0..255 RGB, so the ONNX graph needs no preprocessing
            return self.fc(self.features(x).mean((2, 3))).squeeze(1)

    return SmallCnn()


def augment(img: np.ndarray, rng: np.random.Generator, cfg: CnnConfig) -> np.ndarray:
    """Random crop, then CNNSpot's blur / JPEG (cropping first keeps this cheap), then flip."""
    h, w = img.shape[:2]
    size = min(cfg.crop, h, w)
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    pil = Image.fromarray(img[top : top + size, left : left + size])
    if rng.random() < cfg.blur_p:
        pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 3.0))))
    if rng.random() < cfg.jpeg_p:
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(rng.integers(30, 101)))
        buf.seek(0)
        pil = Image.open(buf).convert("RGB")
    out = np.asarray(pil)
    return out[:, ::-1] if rng.random() < 0.5 else out


@dataclass
class FittedCnn:
    """A trained net (eval mode) with its config; scores aligned uint8 images."""

    net: Any
    config: CnnConfig
    train_seconds: float

    def logits(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        """Uncalibrated logits (N,) for uint8 (N, H, W, 3) images, whole image, no augmentation."""
        torch = import_torch()
        self.net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch):
                out.append(self.net(torch.from_numpy(to_input(images[i : i + batch]))).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    def export_onnx(self, path: Path, size: int) -> None:
        """Legacy (TorchScript) exporter; dynamic batch axis; (N, 3, size, size) -> (N,)."""
        torch = import_torch()
        self.net.eval()
        path.parent.mkdir(parents=True, exist_ok=True)
        dummy = torch.zeros(1, 3, size, size)
        with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                self.net,
                (dummy,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=17,
            )

    def describe(self) -> dict[str, Any]:
        return {**asdict(self.config), "params": self.n_params()}


def fit_cnn(
    images: np.ndarray, labels: np.ndarray, config: CnnConfig | None = None, progress: bool = False
) -> FittedCnn:
    """Train on uint8 (N, H, W, 3) format-aligned images and 0/1 labels (1 = generated).

    `images` may also be (N, V, H, W, 3): V views of each image (as stored, then laundered
    copies); each time an image is drawn, one of its views is picked at random, so an epoch
    costs the same as without views. Seeded (torch, numpy) with deterministic kernels and a
    fixed thread count, so the same seed and data give the same weights; balanced by a
    positive-class weight; AdamW with a one-cycle learning rate.
    """
    torch = import_torch()
    cfg = config or CnnConfig()
    y = np.asarray(labels, dtype=np.float32)
    n_pos = float(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ValueError("training needs images of both classes")
    rng = np.random.default_rng(cfg.seed)
    was_deterministic, was_threads = torch.are_deterministic_algorithms_enabled(), None
    torch.use_deterministic_algorithms(True)
    if torch.get_num_threads() != cfg.threads:
        was_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    try:
        torch.manual_seed(cfg.seed)
        net = build_net(cfg.widths)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = -(-len(y) // cfg.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=cfg.epochs * per_epoch
        )
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - n_pos) / n_pos))
        epochs: Any = range(cfg.epochs)
        if progress:
            from tqdm import tqdm

            epochs = tqdm(epochs, desc="cnn epochs", unit="epoch")
        net.train()
        for _ in epochs:
            order = rng.permutation(len(y))
            for i in range(0, len(order), cfg.batch):
                idx = order[i : i + cfg.batch]
                x = np.stack([augment(_view(images[j], rng), rng, cfg) for j in idx])
                loss = loss_fn(net(torch.from_numpy(to_input(x))), torch.from_numpy(y[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        if was_threads is not None:
            torch.set_num_threads(was_threads)
    net.eval()
    return FittedCnn(net=net, config=cfg, train_seconds=time.perf_counter() - start)


def _view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (H, W, 3) view of an image given as (H, W, 3) or (V, H, W, 3); no draw for one view
    (so single-view training keeps its random sequence)."""
    if image.ndim == 3:
        return image
    pick = int(rng.integers(len(image))) if len(image) > 1 else 0
    return np.asarray(image[pick])


# -- `forenscope train --detector cnn-generated` ---------------------------------------------
@dataclass
class CnnRun:
    """What one training run produced, before anything is written."""

    fitted: FittedCnn
    calibration: dict[str, Any]
    metrics: dict[str, Any]
    samples: list[TrainingImage]
    check_images: np.ndarray  # held-out aligned images, to compare ONNX with torch
    launder_copies: int = 0


def split_60_20_20(y: np.ndarray, groups: list[str], seed: int) -> tuple[np.ndarray, ...]:
    """Grouped, stratified: fit on 3/5, Platt-calibrate on 1/5, report metrics on 1/5.
    (The linear heads calibrate on out-of-fold logits; retraining a CNN per fold costs too
    much, so the calibration part is simply held out.)"""
    test, calib, *fit = group_folds(y, groups, seed)
    return np.concatenate(fit), calib, test


def train_cnn(
    manifest: Path,
    *,
    seed: int,
    calibration: str,
    epochs: int,
    include_cifake: bool = False,
    progress: bool = False,
    launder_copies: int = 0,
) -> CnnRun:
    import_torch()  # fail before aligning hundreds of images
    samples = select(read_manifest(manifest), "generated", include_cifake=include_cifake)
    y = np.array([target(s, "generated") for s in samples])
    if len(set(y.tolist())) < 2:
        raise ForenscopeError(f"manifest {manifest} has no rows of both classes")
    views = with_laundered_copies(samples, launder_copies, seed)
    n = len(samples)
    # (N, V, H, W, 3): view 0 as stored, then the laundered copies of the same image
    flat = np.stack([load_sample(v) for v in views])  # view-major: all stored, then copy 1, ...
    images = flat.reshape(launder_copies + 1, n, *flat.shape[1:]).swapaxes(0, 1).copy()
    del flat
    fit, calib, test = split_60_20_20(y, [s.group for s in samples], seed)
    fitted = fit_cnn(images[fit], y[fit], CnnConfig(seed=seed, epochs=epochs), progress)
    # an identity "head" on the CNN logit reuses the linear heads' calibration and metrics
    one = np.ones(1)
    head = LinearHead("cnn", "cnn-logit", ("real", "generated"), one * 0, one, one, 0.0)
    v = images.shape[1]
    calib_z = fitted.logits(images[calib].reshape(-1, *images.shape[2:]))
    calibrate(head, calib_z, np.repeat(y[calib], v), calibration)
    metrics = evaluate(head, fitted.logits(images[test, 0])[:, None], y[test])
    if v > 1:
        washed = fitted.logits(images[test, 1:].reshape(-1, *images.shape[2:]))[:, None]
        laundered = evaluate(head, washed, np.repeat(y[test], v - 1))
        metrics |= {f"laundered_{k}": val for k, val in laundered.items()}
    metrics.update(n_train=len(fit), n_calib=len(calib), train_seconds=round(fitted.train_seconds))
    return CnnRun(fitted, head.calibration, metrics, samples, images[test, 0][:8], launder_copies)


def write_cnn(run: CnnRun, out: Path, name: str, command: str) -> Path:
    """Export the ONNX, check onnxruntime reproduces torch, write the sidecar and the card."""
    from ..learned.cnn import CnnModel, CnnSidecar
    from ..models.cache import file_sha256

    torch = import_torch()
    onnx_path = out / f"{name}.onnx"
    size = int(run.check_images.shape[1])
    run.fitted.export_onnx(onnx_path, size)
    sidecar = CnnSidecar(name, onnx_path.name, file_sha256(onnx_path), size)
    sidecar.calibration = run.calibration
    diff = np.abs(
        CnnModel(onnx_path, sidecar).logits(run.check_images) - run.fitted.logits(run.check_images)
    ).max()
    if not diff < 1e-3:
        raise ModelError(f"exported ONNX differs from torch by {diff:.2g}; not writing {name}")
    sidecar.meta = {
        "alignment": ALIGN_TAG,
        "task": "generated",
        "architecture": run.fitted.describe(),
        "metrics": run.metrics,
        "onnx_bytes": onnx_path.stat().st_size,
        "onnx_vs_torch_max_abs_logit_diff": float(f"{diff:.3g}"),
        "torch": str(torch.__version__),
        "command": command,
    }
    if run.launder_copies:
        from .launder import TRAIN_LAUNDER

        q, sc = TRAIN_LAUNDER.quality, TRAIN_LAUNDER.scale
        sidecar.meta["augmentation"] = (
            f"{run.launder_copies} laundered copies per image (both classes): downscale "
            f"U[{sc[0]}, {sc[1]}] (bilinear/bicubic/Lanczos), JPEG 4:2:0 q U{{{q[0]}..{q[1]}}}, "
            "seeded by (seed, copy, sha256), before the alignment; each draw of an image picks "
            "one of its views (as stored or a copy) at random"
        )
    sidecar.save(out / f"{name}.json")
    (out / f"{name}.md").write_text(render_cnn_card(sidecar, run.samples), encoding="utf-8")
    return out / f"{name}.json"


def render_cnn_card(sidecar: Any, samples: list[TrainingImage]) -> str:
    meta, arch = sidecar.meta, sidecar.meta["architecture"]
    training = [
        f"Random {arch['crop']} px crops of the aligned {sidecar.input_size} px images, "
        f"Gaussian blur (sigma U[0, 3], p={arch['blur_p']}) and JPEG re-compression "
        f"(quality U[30, 100], p={arch['jpeg_p']}) as in CNNSpot, horizontal flips; AdamW "
        f"(lr {arch['lr']}, weight decay {arch['weight_decay']}, one-cycle), batch "
        f"{arch['batch']}, {arch['epochs']} epochs, balanced BCE, seed {arch['seed']}, torch "
        f"{meta['torch']} on CPU. Scoring uses the whole {sidecar.input_size} px image."
    ]
    if "augmentation" in meta:
        training.append(
            f"Laundering (before CNNSpot's augmentation): {meta['augmentation']}. Calibration "
            "uses the calibration images as stored and their laundered copies; `laundered_` "
            "metrics are those of the held-out images' laundered copies."
        )
    return render(
        Card(
            name=sidecar.name,
            summary="CNNSpot-style baseline (Wang et al. 2020), trained from scratch (no "
            f"pretrained weights): {len(arch['widths'])} conv3x3-BN-ReLU blocks of widths "
            f"{list(arch['widths'])} (first stride 1, then stride 2), global average pooling, "
            f"one linear logit; {arch['params']} parameters, `{sidecar.onnx_file}` "
            f"{meta['onnx_bytes']} bytes (sha256 `{sidecar.onnx_sha256}`). "
            f"P({sidecar.classes[1]}) vs {sidecar.classes[0]}, calibration: "
            f"{sidecar.calibration.get('method')}. Inference: onnxruntime.",
            samples=samples,
            alignment=str(meta["alignment"]),
            metrics=meta["metrics"],
            command=meta["command"],
            data_notes=["All rows selected from the manifest; the split is under Metrics."],
            sections=[("Training", training)],
            metrics_notes=[
                "Split (stratified, grouped): 60% fit, 20% Platt calibration, 20% these metrics."
            ],
            reproduce_notes=[
                "Needs torch (`pip install torch==2.13.0`, the `cnn` extra); trained on one CPU "
                "thread with deterministic kernels, so the same seed gives the same weights. "
                "onnxruntime reproduces the torch logits within "
                f"{meta['onnx_vs_torch_max_abs_logit_diff']} on held-out images."
            ],
            limitations="Limitations: a weak comparison baseline, not a detector to rely on: a "
            "few hundred training images, no ImageNet pretraining (CNNSpot's generalisation "
            "comes from it), mostly 2022-era generators (the 2024 ones have 3-16 images each), "
            "GAN images mostly CNNDetection and diffusion images mostly imagen prompts, so "
            "content differs by class.",
        )
    )
