"""Image payloads for chat requests: downscale, re-encode, base64 data URL, detail level."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ImageDecodeError
from ..io.input import ImageInput

Detail = Literal["low", "high", "auto"]
ImageLike = ImageInput | str | Path | bytes | np.ndarray


@dataclass(frozen=True)
class ImagePolicy:
    """How an image is sent. Re-encoding to one format keeps the model from seeing the source
    format (a PNG-vs-JPEG confound); `detail='low'` caps the side at 512 as OpenAI does."""

    max_side: int = 1024
    jpeg_quality: int = 90
    detail: Detail = "auto"
    reencode: bool = True

    def as_params(self) -> dict[str, Any]:
        return {
            "max_side": self.effective_max_side,
            "q": self.jpeg_quality,
            "detail": self.detail,
            "reencode": self.reencode,
        }

    @property
    def effective_max_side(self) -> int:
        return min(self.max_side, 512) if self.detail == "low" else self.max_side


@dataclass(frozen=True)
class EncodedImage:
    data_url: str
    sha256: str  # of the source bytes: the image's identity in cache keys and reports
    width: int
    height: int
    detail: Detail
    mime: str

    def content_part(self) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": self.data_url, "detail": self.detail}}


def _source_bytes(image: ImageLike) -> tuple[bytes | None, np.ndarray | None]:
    if isinstance(image, ImageInput):
        return image.data, image.rgb
    if isinstance(image, np.ndarray):
        return None, image
    if isinstance(image, bytes):
        return image, None
    return Path(image).read_bytes(), None


def encode_image(image: ImageLike, policy: ImagePolicy | None = None) -> EncodedImage:
    """Encode an image for a chat request according to `policy`."""
    from PIL import Image, ImageOps

    policy = policy or ImagePolicy()
    data, rgb = _source_bytes(image)
    fmt = None
    try:
        if rgb is not None:
            im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("RGB")
        else:
            assert data is not None
            opened = Image.open(io.BytesIO(data))
            fmt = opened.format
            im = ImageOps.exif_transpose(opened)
    except Exception as exc:  # PIL raises many types for bad input
        raise ImageDecodeError(f"cannot encode image for the LLM: {exc}") from exc
    if data is None:
        data = np.ascontiguousarray(rgb).tobytes()
    sha = hashlib.sha256(data).hexdigest()
    side = policy.effective_max_side
    fits = max(im.size) <= side
    if not policy.reencode and fits and fmt in ("JPEG", "PNG"):
        mime = "image/jpeg" if fmt == "JPEG" else "image/png"
        payload = data
    else:
        im = im.convert("RGB")
        if not fits:
            im.thumbnail((side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=policy.jpeg_quality)
        payload, mime = buf.getvalue(), "image/jpeg"
    url = f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
    return EncodedImage(url, sha, im.size[0], im.size[1], policy.detail, mime)
