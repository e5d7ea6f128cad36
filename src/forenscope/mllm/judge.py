"""An LLM judge of stage 2's object-relative position ("left of the man's hand").

Position relative to objects cannot be checked against a mask by words alone, so a second model
is shown the query image with the true edited region outlined in a contrasting colour (the
colour is named in the prompt) and the answer's `location.relative` text, and asked Yes or No:
does the text locate the outlined region? The answer is read with the stage-1 yes/no parser; a
refusal or an undetermined answer is kept as such (`refusal`), never turned into a verdict.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .client import AsyncLLMClient
from .config import LLMConfig, load_config
from .errors import LLMError
from .image import EncodedImage, encode_image
from .request import answer_texts, build_request, user_turn

JUDGE_PROMPT_VERSION = "judge-object-position-1"
JUDGE_SYSTEM = (
    "You check forensic image analyses against the known truth. Answer Yes or No, nothing else."
)
JUDGE_USER = (
    "In this image the edited region is outlined in {colour}. An analyst described where the "
    'edit is, relative to the objects in the image: "{text}"\n'
    "Does this description locate the region outlined in {colour}? Judge only the place it "
    "names. Answer Yes or No."
)
JUDGE_PROMPT_SHA256 = hashlib.sha256(f"{JUDGE_SYSTEM}\n{JUDGE_USER}".encode()).hexdigest()
# Pure, saturated colours that natural photos rarely hold; the one farthest from the pixels
# under the outline is drawn, so the outline stands out against this image.
OUTLINE_COLOURS: dict[str, tuple[int, int, int]] = {
    "magenta": (255, 0, 255),
    "green": (0, 255, 0),
    "cyan": (0, 255, 255),
}
MAX_TEXT_CHARS = 500  # a location is a phrase; a longer text is cut, not sent whole


def _dilate(mask: np.ndarray, t: int, outside: bool) -> np.ndarray:
    """Binary dilation by a (2t+1)-square, separably; `outside` is the value beyond the edge."""
    out: np.ndarray = mask
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (t, t)
        padded = np.pad(out, pad, constant_values=outside)
        n = out.shape[axis]
        shifted = [np.take(padded, range(i, i + n), axis=axis) for i in range(2 * t + 1)]
        out = np.any(np.stack(shifted), axis=0)
    return out


def outline_ring(mask: np.ndarray, width: int) -> np.ndarray:
    """The pixels within `width` of the mask's boundary, on both sides (the image edge counts as
    a boundary, so a region touching it is closed there too)."""
    m = np.asarray(mask, dtype=bool)
    inner = ~_dilate(~m, width, outside=True)  # erosion
    ring: np.ndarray = _dilate(m, width, outside=False) & ~inner
    return ring


def outline_width(shape: tuple[int, ...]) -> int:
    """About 1% of the longer side: visible at 256 px and at 2048 px alike."""
    return max(1, max(shape[:2]) // 128)


def contrasting_colour(rgb: np.ndarray, ring: np.ndarray) -> str:
    """The name of the outline colour farthest (mean RGB distance) from the pixels it covers."""
    under = rgb[ring].astype(np.float64)

    def distance(name: str) -> float:
        return float(np.linalg.norm(under - np.array(OUTLINE_COLOURS[name]), axis=1).mean())

    return max(OUTLINE_COLOURS, key=distance)


def draw_outline(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """(a copy of the image with the mask's contour drawn, the colour's name)."""
    if rgb.shape[:2] != mask.shape[:2]:
        raise ValueError(f"mask {mask.shape[:2]} and image {rgb.shape[:2]} differ in size")
    if not np.asarray(mask, dtype=bool).any():
        raise ValueError("an empty mask has no region to outline")
    ring = outline_ring(mask, outline_width(rgb.shape))
    colour = contrasting_colour(rgb, ring)
    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    out[ring] = OUTLINE_COLOURS[colour]
    return out, colour


def outlined_png(image: bytes, mask: np.ndarray) -> tuple[bytes, str]:
    """The image (encoded bytes, as the model saw it) with the region outlined, as PNG bytes
    (lossless, so the outline's colour is exact), and the colour's name."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as im:
        rgb = np.asarray(im.convert("RGB"))
    drawn, colour = draw_outline(rgb, mask)
    buf = io.BytesIO()
    Image.fromarray(drawn).save(buf, "PNG")
    return buf.getvalue(), colour


def judge_messages(text: str, colour: str, image: EncodedImage) -> list[dict[str, Any]]:
    """System and user turns of one judgement."""
    quoted = " ".join(text.split())[:MAX_TEXT_CHARS].replace('"', "'")
    user = JUDGE_USER.format(colour=colour, text=quoted)
    return [{"role": "system", "content": JUDGE_SYSTEM}, user_turn(user, image)]


@dataclass(frozen=True)
class PositionVerdict:
    """`object_position` 1 (locates it), 0 (does not) or None (no verdict: `refusal` holds the
    parser's reason, `error` a failed call)."""

    object_position: int | None
    refusal: str | None = None
    error: str | None = None
    answer: str | None = None  # the judge's text, cut short (for the audit of a verdict)


def read_verdict(text: str | None) -> PositionVerdict:
    """The judge's answer through the stage-1 yes/no parser: a refusal is never a verdict."""
    from .answers import parse_yes_no

    label, reason = parse_yes_no(text)
    shown = text[:200] if text else text
    if label == "refusal":
        return PositionVerdict(None, refusal=reason or "refusal", answer=shown)
    return PositionVerdict(1 if label == "yes" else 0, answer=shown)


@dataclass(frozen=True)
class JudgeSettings:
    temperature: float = 0.0
    max_tokens: int = 64  # room for "Yes." after a short preamble; a long essay is cut


class PositionJudge:
    """A configured judge: `identity()` goes into the run identity; `open()` a client session."""

    def __init__(self, config: LLMConfig, settings: JudgeSettings | None = None) -> None:
        self.config = config
        self.settings = settings or JudgeSettings()

    @classmethod
    def from_file(cls, path: str) -> PositionJudge:
        return cls(load_config(path))

    def identity(self) -> dict[str, Any]:
        """What decides a verdict: endpoint, model and settings (never the API key)."""
        cfg = self.config
        return {
            "base_url": cfg.base_url,
            "model": cfg.model,
            "flavor": cfg.flavor,
            "image_policy": cfg.image_policy.as_params(),
            "extra_body": cfg.extra_body,
            "prompt_version": JUDGE_PROMPT_VERSION,
            "prompt_sha256": JUDGE_PROMPT_SHA256,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "outline": f"mask contour, {'/'.join(OUTLINE_COLOURS)} (farthest from the pixels)",
        }

    @asynccontextmanager
    async def open(self) -> AsyncIterator[JudgeSession]:
        async with AsyncLLMClient(self.config) as client:
            yield JudgeSession(self, client)


class JudgeSession:
    """One open client: `ajudge` per stage-2 answer (concurrency bounded by the client)."""

    def __init__(self, judge: PositionJudge, client: AsyncLLMClient) -> None:
        self.judge = judge
        self.client = client

    async def ajudge(self, image: bytes, mask: np.ndarray, text: str) -> PositionVerdict:
        """Does `text` locate the region of `mask` in `image` (the bytes the model saw)?"""
        cfg, s = self.judge.config, self.judge.settings
        if not text.strip():  # the answer names no place relative to objects: it locates nothing
            return PositionVerdict(0, answer=None)
        png, colour = outlined_png(image, mask)
        encoded = encode_image(png, cfg.image_policy)
        body = build_request(
            cfg.model,
            judge_messages(text, colour, encoded),
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            extra=cfg.extra_body,
        )
        params = {
            "text": text,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "prompt_sha256": JUDGE_PROMPT_SHA256,
            "image": cfg.image_policy.as_params(),
        }
        key = {"prompt_version": JUDGE_PROMPT_VERSION, "image_sha256": encoded.sha256}
        try:
            resp = await self.client.complete(body, {**key, "params": params})
        except LLMError as exc:  # a failed judgement is no verdict, and says why
            return PositionVerdict(None, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        texts = answer_texts(resp.data)
        return read_verdict(texts[0] if texts else None)
