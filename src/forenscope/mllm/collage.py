"""k-shot for servers that take one image per request (e.g. Llama 3.2 Vision on Ollama): the
examples and the query tiled into one numbered collage, with the layout and the examples'
answers stated in the prompt (`image_mode: collage` in the LLM config).

Each panel is the image as it would have been sent alone (the same policy), scaled to fit a
square tile (256-512 px) on grey, its number in the top-left corner. Panels run left to right,
top to bottom; the query is always the last panel, and the model is asked about it only.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .image import EncodedImage, ImagePolicy, encode_image
from .prompts import PromptTemplate
from .request import Message, user_turn

TILE_MAX = 512  # a panel's side before the policy's max side shrinks the whole collage
TILE_MIN = 256  # small images are scaled up, so the panel number covers little of them
GREY = (128, 128, 128)


def grid(n: int) -> tuple[int, int]:
    """(columns, rows): one row up to 3 panels, else the squarest grid."""
    cols = n if n <= 3 else math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def _pixels(image: EncodedImage) -> Image.Image:
    data = base64.b64decode(image.data_url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def collage_pixels(panels: Sequence[EncodedImage]) -> np.ndarray:
    """The panels tiled in reading order, each letterboxed into a square and numbered."""
    cols, rows = grid(len(panels))
    images = [_pixels(p) for p in panels]
    tile = min(TILE_MAX, max(TILE_MIN, *(max(im.size) for im in images)))
    sheet = Image.new("RGB", (cols * tile, rows * tile), GREY)
    draw = ImageDraw.Draw(sheet)
    for i, im in enumerate(images):
        im = ImageOps.contain(im, (tile, tile), Image.Resampling.LANCZOS)
        x0, y0 = (i % cols) * tile, (i // cols) * tile
        sheet.paste(im, (x0 + (tile - im.width) // 2, y0 + (tile - im.height) // 2))
        label, size = str(i + 1), max(8, tile // 12)
        draw.rectangle((x0, y0, x0 + size * len(label) + 6, y0 + size + 4), fill=(0, 0, 0))
        draw.text((x0 + 3, y0 + 2), label, fill=(255, 255, 255), font_size=size)
    return np.asarray(sheet)


def layout_text(answers: Sequence[str], cols: int) -> str:
    """What the collage shows, and which panel the question is about."""
    n = len(answers) + 1
    lines = [
        f"The image is a collage of {n} panels numbered 1 to {n} in their top-left corners, "
        f"read left to right and top to bottom, {cols} per row.",
        *(f"Panel {i} is a solved example. Its answer: {a}" for i, a in enumerate(answers, 1)),
        f"Panel {n} is the image to judge. Answer the question below about panel {n} only; "
        f"give any place or box relative to panel {n}.",
    ]
    return "\n".join(lines)


def collage_messages(
    template: PromptTemplate,
    query: EncodedImage,
    examples: Sequence[tuple[EncodedImage, str]],
    policy: ImagePolicy,
) -> tuple[list[Message], EncodedImage]:
    """(system prompt and one user turn carrying the collage, the collage as sent)."""
    panels = [image for image, _ in examples] + [query]
    sheet = encode_image(collage_pixels(panels), policy)
    text = layout_text([answer for _, answer in examples], grid(len(panels))[0])
    messages: list[Message] = []
    if template.system:
        messages.append({"role": "system", "content": template.system})
    messages.append(user_turn(f"{text}\n\n{template.user}", sheet))
    return messages, sheet
