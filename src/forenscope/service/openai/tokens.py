"""Token counts for `forenscope serve-openai`: one approximate tokenizer for usage, max_tokens and
streaming, and OpenAI's published image-token rule.

Forenscope has no language model, so there is no real vocabulary. The pieces below (a word of
up to eight letters, up to three digits, one CJK character or one other symbol, each with its
leading spaces) land close to BPE counts for English, and they are consistent: `max_tokens`
cuts the answer after that many pieces, `usage.completion_tokens` counts the same pieces, and a
stream sends them one by one. The pieces of a text join back to exactly that text.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

_PIECE = re.compile(r"\s*(?:[\u3400-\u9fff]|[^\W\d_\u3400-\u9fff]{1,8}|\d{1,3}|\S)|\s+", re.DOTALL)
MESSAGE_OVERHEAD = 3  # OpenAI's per-message framing tokens (role, separators)
REPLY_PRIMING = 3  # the tokens that open the assistant's reply
LOW_DETAIL_TOKENS = 85
TILE_TOKENS = 170


def pieces(text: str) -> list[str]:
    """The text cut into token-sized pieces; "".join(pieces(t)) == t."""
    return _PIECE.findall(text)


def count(text: str) -> int:
    return len(pieces(text))


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """(text cut to `max_tokens` pieces, True when it was cut)."""
    if max_tokens is None:
        return text, False
    parts = pieces(text)
    if len(parts) <= max_tokens:
        return text, False
    return "".join(parts[:max_tokens]), True


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's rule for GPT-4o-class models: 85 at low detail; otherwise fit in 2048x2048,
    shortest side down to 768, then 170 per 512-pixel tile plus 85."""
    if detail == "low" or width <= 0 or height <= 0:
        return LOW_DETAIL_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return LOW_DETAIL_TOKENS + TILE_TOKENS * math.ceil(w / 512) * math.ceil(h / 512)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header, (0, 0) when it cannot be read (no pixels decoded)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # PIL raises many types; an unreadable image counts as low detail
        return 0, 0


def message_tokens(message: dict[str, Any], image_cost: list[int]) -> int:
    """Tokens of one chat message: framing, role, every text part; `image_cost` holds the
    tokens of this message's images, in order."""
    content = message.get("content")
    texts: list[str] = [str(message.get("role", ""))]
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        texts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return MESSAGE_OVERHEAD + sum(count(t) for t in texts) + sum(image_cost)
