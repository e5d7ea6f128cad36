"""Invisible DWT-DCT watermarks that open-source generators' reference code embeds.

Stable Diffusion's reference scripts, Stability's SDXL code, diffusers' SDXL pipelines and
Black Forest Labs' FLUX.1 reference code all call invisible-watermark's `dwtDct` encoder with a
fixed public message. Finding one of those messages proves the image came out of such a
pipeline. Not finding one proves nothing: most services and UIs embed no such mark, and any
resize, crop or strong re-compression erases it.

The decoder below is a vectorised port of invisible-watermark 0.2.0 `EmbedMaxDct.decode`
(MIT licence): it needs only OpenCV and PyWavelets, and a test checks it bit for bit against the
original loaded with `load_maxdct()`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from math import comb
from types import ModuleType

import numpy as np

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from .base import Expert
from .registry import register_expert

SCALE = 36.0  # EmbedMaxDct default scales=[0, 36, 36]: only the U channel carries the mark
BLOCK = 4
HAAR_TAP = 0.7071067811865476  # pywt.Wavelet("haar").dec_lo[0]


def bytes_to_bits(data: bytes) -> np.ndarray:
    """WatermarkEncoder.set_by_bytes: most significant bit first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(bool)


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """WatermarkDecoder.reconstruct_bytes: pack bits, keep len // 8 bytes."""
    return np.packbits(bits.astype(np.uint8)).tobytes()[: len(bits) // 8]


def int_to_bits(message: int) -> np.ndarray:
    # The reference code uses `bin(x)[2:]`, which drops leading zeros (FLUX's mark is 46 bits).
    return np.array([c == "1" for c in bin(message)[2:]], dtype=bool)


# (name, message bits, whether the message is text). Sources: CompVis/stable-diffusion and
# runwayml scripts ("StableDiffusionV1", "StableDiffusionV1-Inpainting"), Stability-AI/
# stablediffusion scripts ("SDV2"), Stability-AI/generative-models scripts/demo/detect.py and
# diffusers stable_diffusion_xl/watermark.py (SDXL), black-forest-labs/flux src/flux/util.py.
KNOWN_MARKS: tuple[tuple[str, np.ndarray, bool], ...] = (
    ("Stable Diffusion 1.x reference scripts", bytes_to_bits(b"StableDiffusionV1"), True),
    (
        "Stable Diffusion 1.x inpainting scripts",
        bytes_to_bits(b"StableDiffusionV1-Inpainting"),
        True,
    ),
    ("Stable Diffusion 2.x reference scripts", bytes_to_bits(b"SDV2"), True),
    (
        "SDXL (Stability generative-models / diffusers)",
        int_to_bits(0b101100111110110010010000011110111011000110011110),
        False,
    ),
    (
        "FLUX.1 reference code (Black Forest Labs)",
        int_to_bits(0b001010101111111010000111100111001111010100101110),
        False,
    ),
)
# The SD scripts, Stability's sgm and FLUX convert RGB to BGR before encoding, as the library
# expects; diffusers' SDXL watermarker passes RGB arrays unchanged, so its mark sits in the other
# chroma channel. We try both.
ORDERS = ("BGR", "RGB")
N_TESTS = len(KNOWN_MARKS) * len(ORDERS)
PROOF_P = 1e-8  # Bonferroni-corrected chance that an unmarked image matches this well
HINT_P = 1e-4
MAX_PIXELS = 4_000_000  # rows beyond this are not read: the mark repeats all over the image


def load_maxdct() -> ModuleType | None:
    """The reference `imwatermark/maxDct.py`, loaded without running the package `__init__`
    (which imports torch through its RivaGAN module). None when it is not installed."""
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = f"{list(spec.submodule_search_locations)[0]}/maxDct.py"
    mspec = importlib.util.spec_from_file_location("forenscope_imwatermark_maxdct", path)
    if mspec is None or mspec.loader is None:
        return None
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module


def block_votes(bgr: np.ndarray) -> np.ndarray:
    """One bit vote per 4x4 block of the U channel's Haar approximation, in row-major order
    (exactly `EmbedMaxDct.decode_frame` with `infer_dct_matrix`)."""
    return _votes(bgr, "BGR")


def _votes(img: np.ndarray, order: str) -> np.ndarray:
    """`block_votes` of the image whose channels are in `order` (RGB arrays are converted by
    OpenCV's RGB formula, which is its BGR one with the channels swapped: no reversed copy)."""
    import cv2

    rows, cols = img.shape[:2]
    code = cv2.COLOR_BGR2YUV if order == "BGR" else cv2.COLOR_RGB2YUV
    yuv = cv2.cvtColor(np.ascontiguousarray(img), code)
    ca1 = haar_approximation(yuv[: rows // 4 * 4, : cols // 4 * 4, 1])
    nr, nc = ca1.shape[0] // BLOCK, ca1.shape[1] // BLOCK
    blocks = ca1[: nr * BLOCK, : nc * BLOCK].reshape(nr, BLOCK, nc, BLOCK)
    # The largest |coefficient| but the DC of each block (the reference's value at its argmax),
    # plane by plane: a max over a short last axis is many times slower in numpy.
    peak = np.abs(blocks[:, 0, :, 1])
    for i in range(BLOCK):
        for j in range(BLOCK):
            if (i, j) not in ((0, 0), (0, 1)):
                np.maximum(peak, np.abs(blocks[:, i, :, j]), out=peak)
    return np.asarray((peak.ravel() % SCALE) > 0.5 * SCALE)


def haar_approximation(channel: np.ndarray) -> np.ndarray:
    """`pywt.dwt2(channel, "haar")[0]` for even sides, bit for bit: PyWavelets sums the two
    filter taps times the samples in float64, rows first, then columns; in numpy that is a
    quarter of its time, and the detail bands nobody reads are not made."""
    h = HAAR_TAP
    x = channel.astype(np.float64)
    a = x[0::2] * h + x[1::2] * h
    return np.asarray(a[:, 0::2] * h + a[:, 1::2] * h)


def decode_bits(votes: np.ndarray, length: int) -> np.ndarray:
    """Average the votes of blocks that carry bit i (block index % length == i)."""
    index = np.arange(votes.size) % length
    ones = np.bincount(index, weights=votes.astype(np.float64), minlength=length)
    avg = ones / np.maximum(np.bincount(index, minlength=length), 1)
    return np.asarray(avg * 255 > 127)


def tail_p(matches: int, n: int) -> float:
    """P(at least `matches` of `n` fair coin flips agree): the chance of a match by luck."""
    return sum(comb(n, k) for k in range(matches, n + 1)) / 2.0**n


@dataclass
class Candidate:
    mark: str
    order: str
    bits: int
    matches: int
    p_adjusted: float
    decoded: str | None = None


def scan(rgb: np.ndarray) -> list[Candidate]:
    """Every known mark against both channel orders, best (smallest p) first."""
    found: list[Candidate] = []
    # A top crop whose height is a multiple of 8 keeps every block's index, so decoding it is
    # exactly decoding the same blocks of the full image.
    keep = max(256, MAX_PIXELS // max(rgb.shape[1], 1)) // 8 * 8
    rgb = rgb[:keep]
    for order in ORDERS:
        # The "BGR" order reads the RGB array as the library's BGR input (reversed), "RGB"
        # passes it unchanged, which the library then reads as BGR.
        votes = _votes(rgb, "RGB" if order == "BGR" else "BGR")
        for name, mark, is_text in KNOWN_MARKS:
            if votes.size < mark.size:
                continue
            bits = decode_bits(votes, mark.size)
            matches = int(np.sum(bits == mark))
            p_adj = min(1.0, tail_p(matches, mark.size) * N_TESTS)
            text = bits_to_bytes(bits).decode("latin-1") if is_text else None
            found.append(Candidate(name, order, int(mark.size), matches, p_adj, text))
    return sorted(found, key=lambda c: c.p_adjusted)


@register_expert
class WatermarkExpert(Expert):
    spec = ExpertSpec(
        name="watermark",
        version="1.0",
        kind="provenance",
        targets="ai_generated",
        description="Invisible dwtDct watermarks of Stable Diffusion 1.x/2.x scripts, SDXL and "
        "FLUX.1 reference code; a match proves AI generation, no match proves nothing. "
        "Decoding needs only OpenCV + PyWavelets; the reference package, used by the tests, "
        "must be installed as `pip install --no-deps invisible-watermark==0.2.0` (its metadata "
        "pulls torch, which the dwtDct code never uses).",
        inputs=["rgb"],
        licence="Apache-2.0 (code; decoder ported from invisible-watermark, MIT); "
        "PyWavelets (MIT); OpenCV (Apache-2.0)",
        requires=["pywt", "cv2"],
        extra="watermark",
        reference="https://github.com/ShieldMnt/invisible-watermark",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        if image.height * image.width < 256 * 256:
            return self.abstain("image smaller than 256x256 pixels: too small to carry the mark")
        found = scan(image.rgb)
        details = {"candidates": [asdict(c) for c in found[:4]]}
        if not found or found[0].p_adjusted >= HINT_P:
            # Absence is the norm (most generators embed nothing; re-encoding erases it), so
            # reporting a low score would be false evidence of a real photo.
            return self.abstain("no known generator watermark found", details=details)
        best = found[0]
        proof = best.p_adjusted < PROOF_P
        text = f", decoded text {best.decoded!r}" if best.decoded is not None else ""
        summary = (
            f"invisible dwtDct watermark of {best.mark}: {best.matches} of {best.bits} "
            f"bits match{text} (chance of this by luck {best.p_adjusted:.1e}, "
            f"{best.order} channel order)"
        )
        evidence = Evidence(
            kind="watermark.dwtdct",
            summary=summary,
            value=best.mark,
            proves="ai_generated" if proof else None,
        )
        return self.result(
            0.99 if proof else 0.85,
            evidence=[evidence],
            confidence=0.95 if proof else 0.5,
            details=details,
        )
