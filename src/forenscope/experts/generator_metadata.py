"""Generator parameters left in PNG/WebP/JPEG text chunks, comments and EXIF comments.

Stable Diffusion front-ends write their settings into the file they save: A1111/Forge/SD.Next a
`parameters` text, ComfyUI its `prompt`/`workflow` graphs, NovelAI, InvokeAI, Fooocus and
Midjourney their own keys. Such parameters are the generator's own record, so they prove the
image was generated. Their absence proves nothing (any re-save drops them).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from typing import Any

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from .base import Expert
from .exif import GENERATORS, clip, match_any, read_exif
from .registry import register_expert

MAX_CHUNK = 200_000  # characters of one chunk we parse (JSON graphs can be large)
MAX_CHUNKS = 64

# A1111 settings line: `Key: value, Key: "quoted, value", ...`
_PARAM = re.compile(r'\s*([\w][\w ./()-]{0,40}):\s*("(?:\\.|[^\\"]){0,2000}"|[^,]{0,2000})(?:,|$)')
_MJ_JOB = re.compile(r"Job ID:\s*[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.I)
_DREAM = re.compile(r'^"?.{0,2000}"?\s+(?:-s\s*\d+|-S\s*\d+|-W\s*\d+|-C\s*[\d.]+|-A\s*\w+)')


def _inflate(data: bytes) -> bytes:
    """zlib-decompress at most MAX_CHUNK*4 bytes (a zTXt bomb stops there)."""
    try:
        return zlib.decompressobj().decompress(data, MAX_CHUNK * 4)
    except zlib.error:
        return b""


def png_text_chunks(data: bytes) -> dict[str, str]:
    """tEXt/zTXt/iTXt chunks of a PNG, walked directly: no pixel decoding, bounded sizes."""
    out: dict[str, str] = {}
    pos = 8 if data.startswith(b"\x89PNG\r\n\x1a\n") else len(data)
    while pos + 8 <= len(data) and len(out) < MAX_CHUNKS:
        length, ctype = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        body, pos = data[pos + 8 : pos + 8 + length], pos + 12 + length
        key, _, rest = body.partition(b"\0")
        if ctype == b"tEXt":
            text = rest.decode("latin-1")
        elif ctype == b"zTXt":
            text = _inflate(rest[1:]).decode("latin-1")
        elif ctype == b"iTXt" and len(rest) >= 2:
            # compression flag, method, language tag \0, translated keyword \0, text
            raw = rest[2:].split(b"\0", 2)[-1]
            text = (_inflate(raw) if rest[0] else raw).decode("utf-8", "replace")
        elif ctype == b"IEND":
            break
        else:
            continue
        out[key.decode("latin-1")[:80]] = text[:MAX_CHUNK]
    return out


def read_text_chunks(image: ImageInput) -> dict[str, str]:
    """Text metadata: PNG tEXt/iTXt/zTXt, JPEG COM, plus EXIF fields generators write into."""
    from PIL import Image

    chunks = png_text_chunks(image.data)
    try:
        with Image.open(io.BytesIO(image.data)) as im:  # lazy: reads headers, not pixels
            info = {k: v for k, v in im.info.items() if isinstance(v, (str, bytes))}
    except Exception:
        info = {}
    for key, value in list(info.items())[:MAX_CHUNKS]:
        if key in ("icc_profile", "exif", "xmp", "XML:com.adobe.xmp", "dpi", "adobe"):
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        chunks.setdefault(str(key)[:80], text[:MAX_CHUNK])
    for key, value in list(image.text_chunks.items())[:MAX_CHUNKS]:
        chunks[str(key)[:80]] = str(value)[:MAX_CHUNK]
    exif = read_exif(image)
    # A1111 saves `parameters` into EXIF UserComment for JPEG/WebP; ComfyUI's WebP saver puts
    # "workflow:{...}" / "prompt:{...}" into EXIF Make/Model/ImageDescription.
    for tag in ("UserComment", "ImageDescription", "Make", "Model"):
        value = exif.get(tag, "")
        for prefix in ("workflow:", "prompt:"):
            if value.startswith(prefix):
                chunks.setdefault(prefix[:-1], value[len(prefix) :])
        if tag == "UserComment" and "Steps:" in value:
            chunks.setdefault("parameters", value)
    return chunks


def parse_a1111(text: str) -> dict[str, Any] | None:
    """Split an A1111 `parameters` text into prompt, negative prompt and settings."""
    lines = text.strip().splitlines()[:500]
    # The settings line is the last one starting with "Steps:"; extensions (Dynamic Prompts'
    # "Template:" lines, for one) may append lines after it.
    found = [i for i, line in enumerate(lines) if re.match(r"\s*Steps:\s*\d+", line)]
    if not found:
        return None
    settings = {
        m.group(1).strip(): m.group(2).strip().strip('"')[:300]
        for m in _PARAM.finditer(lines[found[-1]][:8000])
    }
    body = "\n".join(lines[: found[-1]])
    prompt, _, negative = body.partition("Negative prompt:")
    return {
        "prompt": prompt.strip()[:2000],
        "negative_prompt": negative.strip()[:2000],
        "settings": dict(list(settings.items())[:40]),
    }


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def parse_comfy_prompt(data: Any) -> dict[str, Any] | None:
    """Node types, checkpoints and sampler settings from a ComfyUI API-format graph."""
    if not isinstance(data, dict) or not data:
        return None
    nodes = [n for n in list(data.values())[:2000] if isinstance(n, dict) and "class_type" in n]
    if not nodes:
        return None
    types = sorted({str(n["class_type"])[:80] for n in nodes})
    models: list[str] = []
    settings: dict[str, Any] = {}
    for node in nodes:
        inputs: dict[str, Any] = node["inputs"] if isinstance(node.get("inputs"), dict) else {}
        for key in ("ckpt_name", "unet_name", "model_name", "lora_name", "vae_name"):
            if isinstance(inputs.get(key), str):
                models.append(inputs[key][:200])
        for key in ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler"):
            if isinstance(inputs.get(key), (int, float, str)):
                settings.setdefault(
                    key, inputs[key] if not isinstance(inputs[key], str) else inputs[key][:80]
                )
    return {"node_types": types[:60], "models": sorted(set(models))[:20], "settings": settings}


def parse_comfy_workflow(data: Any) -> dict[str, Any] | None:
    """Node types and checkpoint names from a ComfyUI UI-format workflow."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        return None
    nodes = [n for n in data["nodes"][:2000] if isinstance(n, dict) and "type" in n]
    if not nodes:
        return None
    models = [
        str(v)[:200]
        for n in nodes
        if "Loader" in str(n["type"])
        for v in (n.get("widgets_values") or [])[:3]
        if isinstance(v, str) and re.search(r"\.(safetensors|ckpt|pt|gguf|bin)$", v)
    ]
    return {
        "node_types": sorted({str(n["type"])[:80] for n in nodes})[:60],
        "models": sorted(set(models))[:20],
    }


def _summarise(key: str, value: str, generator: str) -> Evidence:
    return Evidence(
        kind="generator.parameters",
        summary=f"text chunk '{clip(key, 40)}' = '{clip(value, 120)}' holds {generator} "
        "generation parameters",
        value=generator,
        proves="ai_generated",
    )


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    return {k: clip(data[k], 300) for k in keys if k in data}


def identify(key: str, value: str) -> tuple[str, dict[str, Any]] | None:
    """(generator, parsed parameters) when this chunk was written by a known generator."""
    low = key.lower()
    if low == "parameters":
        if (a1111 := parse_a1111(value)) is not None:
            return "Stable Diffusion (A1111/Forge parameters)", a1111
        data = _json(value)
        if isinstance(data, dict) and ("prompt" in data or "base_model" in data):
            keys = ("prompt", "negative_prompt", "steps", "seed", "base_model", "sampler")
            return "Fooocus", _pick(data, keys)
    if low in ("prompt", "workflow"):
        data = _json(value)
        parsed = parse_comfy_prompt(data) if low == "prompt" else parse_comfy_workflow(data)
        if parsed is not None:
            return "ComfyUI", parsed
    if low in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "sd_metadata"):
        data = _json(value)
        if isinstance(data, dict):
            return "InvokeAI", _pick(data, ("positive_prompt", "prompt", "model", "seed", "steps"))
    if low == "dream" and _DREAM.match(value):
        return "InvokeAI/lstein Dream", {"dream": clip(value, 500)}
    if low == "fooocus_scheme":
        return "Fooocus", {"scheme": clip(value, 40)}
    if low == "comment" and (data := _json(value)) and isinstance(data, dict):
        if {"steps", "sampler"} <= set(data) or {"prompt", "scale"} <= set(data):
            return "NovelAI", _pick(data, ("prompt", "uc", "steps", "scale", "seed", "sampler"))
    if low == "software" and re.fullmatch(r"\s*NovelAI\s*", value):
        return "NovelAI", {"software": value.strip()}
    if low in ("description", "comment") and _MJ_JOB.search(value):
        return "Midjourney", {"description": clip(value, 500)}
    return None


@register_expert
class GeneratorMetadataExpert(Expert):
    spec = ExpertSpec(
        name="generator_metadata",
        version="1.0",
        kind="provenance",
        targets="ai_generated",
        description="Generator parameters in text chunks/comments (A1111 'parameters', ComfyUI "
        "'prompt'/'workflow', NovelAI, InvokeAI, Fooocus, Midjourney, Dream); they prove AI "
        "generation. Abstains when none are present.",
        inputs=["data", "text_chunks", "exif"],
        licence="Apache-2.0 (code); Pillow (MIT-CMU) for parsing",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        chunks = read_text_chunks(image)
        if not chunks:
            return self.abstain(
                "no text chunks or comments: nothing a generator left behind "
                "(absence proves nothing; re-saving drops them)"
            )
        evidence: list[Evidence] = []
        parsed: dict[str, Any] = {}
        hint: Evidence | None = None
        for key, value in chunks.items():
            found = identify(key, value)
            if found is not None:
                generator, params = found
                evidence.append(_summarise(key, value, generator))
                parsed[key] = {"generator": generator, **params}
            elif hint is None and (name := match_any(value[:5000], GENERATORS)):
                hint = Evidence(
                    kind="generator.hint",
                    value=name,
                    summary=f"text chunk '{clip(key, 40)}' = '{clip(value, 120)}' mentions {name}",
                )
        details = {"chunk_keys": sorted(chunks)[:MAX_CHUNKS], "parsed": parsed}
        if evidence:
            return self.result(
                0.99, evidence=evidence + ([hint] if hint else []), confidence=0.95, details=details
            )
        if hint is not None:
            # A name in free text (a caption, an author note) is a strong hint, not the
            # generator's own parameter record.
            return self.result(0.9, evidence=[hint], confidence=0.7, details=details)
        return self.abstain(
            "text chunks present but none was written by a known generator", details=details
        )
