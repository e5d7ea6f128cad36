"""One input per registered expert that makes it JUDGE (score, not abstain), so the contract
test sees every expert's real code path and none can rot unseen.

Each case builds the file bytes (decoded by the real loader) and names what it needs from the
environment: "faces" (the pulled face models, the `face_models` fixture) and/or "clip" (the
fake CLIP encoder with a head fitted to it, `install_fake_clip`), and the optional modules its
builder imports (a user's clone without that extra skips; CI installs them all). The five
signal experts' cases are seeded forgeries of a synthetic photo; their outputs are also kept as
golden files (tests/make_golden.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from forenscope.forgeries import (
    Box,
    make_copy_move,
    make_jpeg_region,
    make_resampled_region,
    make_splice,
    synthetic_photo,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from provenance_fixtures import (
    A1111_RUNS,
    IPTC,
    embed_watermark,
    jpeg_bytes,
    natural_rgb,
    png_bytes,
    sign_c2pa,
)

Need = Literal["faces", "clip"]
H, W = 256, 320  # small: every signal expert still judges, the whole file stays fast


@dataclass(frozen=True)
class JudgingCase:
    """How to build the file, what it is, and what the expert needs from the environment."""

    build: Callable[[], bytes]
    what: str
    needs: frozenset[Need] = frozenset()
    modules: tuple[str, ...] = ()  # what `build` or the fake encoder (not the expert) imports

    def image(self) -> ImageInput:
        return load_image(_built(self.build))


@cache
def _built(build: Callable[[], bytes]) -> bytes:
    return build()  # several experts share one input; build it once per session


@cache
def _base() -> np.ndarray:
    return synthetic_photo(H, W, seed=7)


def jpeg_region() -> bytes:
    return make_jpeg_region(_base(), Box(160, 64, 112, 96), region_quality=50).data


def splice() -> bytes:
    donor = synthetic_photo(H, W, seed=8)
    return make_splice(_base(), donor, Box(150, 80, 120, 100), donor_noise=5.0).data


def resampled_region() -> bytes:
    return make_resampled_region(_base(), Box(150, 80, 128, 112), factor=1.2).data


def copy_move() -> bytes:
    return make_copy_move(_base(), Box(24, 32, 72, 64), (200, 150)).data


def c2pa_signed() -> bytes:
    created = {
        "action": "c2pa.created",
        "softwareAgent": {"name": "TestGen", "version": "2"},
        "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
    }
    return sign_c2pa(jpeg_bytes(natural_rgb(64, 64)), "image/jpeg", [created], title="gen.jpg")


def exif_editor() -> bytes:
    return jpeg_bytes(natural_rgb(64, 64), tags={0x0131: "Adobe Photoshop 24.0 (Windows)"})


def a1111_png() -> bytes:
    return png_bytes(natural_rgb(64, 64), {"parameters": A1111_RUNS["txt2img"]})


def sd1_watermarked() -> bytes:
    from forenscope.experts.watermark import KNOWN_MARKS

    sd1 = KNOWN_MARKS[0][1]  # "StableDiffusionV1", as SD 1.x scripts embed it (BGR)
    return png_bytes(embed_watermark(natural_rgb(256, 256, seed=1), sd1, "BGR"))


def face_png() -> bytes:
    """A 512 px portrait (eyes ~50 px wide, so the eye check judges too) with mismatched
    corneal highlights, as PNG."""
    from test_faces_experts import eyes_with_highlights

    buf = io.BytesIO()
    Image.fromarray(eyes_with_highlights([(2.5, 0), (-2.5, 0)])).save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_base()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


FACES: frozenset[Need] = frozenset({"faces"})
CLIP: frozenset[Need] = frozenset({"clip"})

# The five signal experts, each on the forgery it is built to find (also their golden inputs);
# chosen so the scores are not all saturated at 1.0, which would hide a change in the golden.
SIGNAL_CASES: dict[str, JudgingCase] = {
    "ela": JudgingCase(jpeg_region, "a region re-saved at JPEG q50 before the final q92 save"),
    "jpeg_artifacts": JudgingCase(jpeg_region, "a region re-saved at JPEG q50 (double JPEG)"),
    "noise": JudgingCase(splice, "a splice from another photo with stronger noise"),
    "spectrum": JudgingCase(resampled_region, "a region enlarged x1.2 (bilinear), PNG"),
    "copy_move": JudgingCase(copy_move, "a region copied elsewhere in the same image"),
}

JUDGING_CASES: dict[str, JudgingCase] = {
    **SIGNAL_CASES,
    "c2pa": JudgingCase(
        c2pa_signed,
        "a JPEG with a signed C2PA 'created by AI' manifest",
        modules=("c2pa", "cryptography"),
    ),
    "exif": JudgingCase(exif_editor, "a JPEG whose EXIF Software names Photoshop"),
    "generator_metadata": JudgingCase(a1111_png, "a PNG with an A1111 'parameters' text chunk"),
    "watermark": JudgingCase(
        sd1_watermarked, "a PNG carrying the SD 1.x invisible watermark", modules=("imwatermark",)
    ),
    "clip_detector": JudgingCase(
        photo_jpeg, "a photo, scored by the fake encoder's head", CLIP, modules=("onnx",)
    ),
    "cnn_baseline": JudgingCase(photo_jpeg, "a photo (shipped CNN weights)"),
    "fredect_baseline": JudgingCase(photo_jpeg, "a photo (shipped DCT head)"),
    "gram_baseline": JudgingCase(photo_jpeg, "a photo (shipped Gram head)"),
    "learned_localizer": JudgingCase(jpeg_region, "a JPEG-region forgery (shipped trees)"),
    "face_seam": JudgingCase(face_png, "a drawn portrait the face detector finds", FACES),
    "face_consistency": JudgingCase(face_png, "a drawn portrait", FACES),
    "face_eye_highlights": JudgingCase(face_png, "a portrait with mismatched highlights", FACES),
    "face_clip": JudgingCase(
        face_png, "a portrait, face crop scored by the fake encoder", FACES | CLIP, ("onnx",)
    ),
}


def install_fake_clip(directory: Path) -> tuple[Path, Path]:
    """The fake CLIP encoder (with 2 block outputs, so DAAM runs too) and a `clip-generated`
    head fitted to its sha256, written under `directory`: (encoder path, heads directory).

    The real encoder is ~200 MB and its shipped heads refuse any other encoder; this pair makes
    `clip_detector` and `face_clip` judge in a second, with no download.
    """
    from forenscope.learned.fake_encoder import build_fake_encoder
    from forenscope.learned.heads import LinearHead
    from forenscope.models.sources import file_sha256

    encoder = build_fake_encoder(directory / "fake-clip.onnx", blocks=2)
    head = LinearHead(
        name="clip-generated",
        feature="clip",
        classes=("real", "generated"),
        mean=np.zeros(512),
        scale=np.full(512, 0.05),
        weights=np.random.default_rng(0).normal(size=512),
        bias=0.0,
        calibration={"method": "platt", "a": 0.5, "b": 0.1},
        meta={"encoder_sha256": file_sha256(encoder)},
    )
    heads = directory / "heads"
    head.save(heads / "clip-generated.json")
    return encoder, heads
