"""Generator parameters left in PNG/WebP/JPEG text chunks, comments and EXIF comments.

Stable Diffusion front-ends write their settings into the file they save: A1111/Forge/SD.Next a
`parameters` text, ComfyUI its `prompt`/`workflow` graphs, NovelAI, InvokeAI, Fooocus and
Midjourney their own keys. Such parameters are the generator's own record, so they prove what it
did. That is not always "the whole image is synthetic": an inpainting run (A1111 mask settings,
ComfyUI inpaint nodes, InvokeAI `generation_mode: inpaint`) redrew part of an existing picture,
and an img2img run redrew an existing picture. Both are diffusion edits of an input image, so
they prove `tampered` (details `edit` = "inpaint" | "img2img", `scope` local | global); only a
text-to-image run proves `ai_generated` (`edit` = "txt2img"), and a record that does not say
which it was stays `ai_generated` with `edit` = "unknown". Absence proves nothing (any re-save
drops the chunks).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec, Label
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


# -- what the generator did -----------------------------------------------------------------
Edit = Literal["txt2img", "img2img", "inpaint", "unknown"]
# When chunks disagree, the most specific edit wins (an inpaint graph also has a sampler).
EDIT_RANK: dict[str, int] = {"unknown": 0, "txt2img": 1, "img2img": 2, "inpaint": 3}
INPAINTED = "inpainted part of an existing image"
REDREW = "redrew an existing image (img2img)"
GENERATED = "generated the whole image from a text prompt (txt2img)"
UNSTATED = "wrote generation parameters that do not say whether it started from an existing image"


@dataclass
class Found:
    """One chunk a known generator wrote: who, what it did in plain words, and its settings."""

    generator: str
    edit: Edit
    did: str
    params: dict[str, Any]


def _said(settings: dict[str, Any], keys: Iterable[str]) -> str:
    return ", ".join(f"{k.lower()} {clip(str(settings[k]), 40)}" for k in keys if k in settings)


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


# Settings A1111/Forge write only for a masked img2img (inpaint) run, with SD.Next's spellings.
# ADetailer's own inpainting of a generated face writes "ADetailer mask blur" etc.: not these.
A1111_MASK_KEYS = (
    "Mask blur",
    "Inpaint area",
    "Masked area padding",
    "Masked content",
    "Mask mode",
    "Inpainting fill",
    "Inpaint padding",
    "Soft inpainting enabled",
    "Mask area",
    "Mask padding",
    "Mask content",
    "Mask invert",
    "Mask alpha",
)


def a1111_edit(settings: dict[str, Any]) -> tuple[Edit, str]:
    """txt2img, img2img or inpaint, from the settings A1111 writes for each mode."""
    masked = [k for k in A1111_MASK_KEYS if k in settings]
    # Early releases wrote "Mask blur" for every img2img run, mask or not; releases that also
    # write "Version" write it only with a mask. Alone and unversioned it proves img2img only.
    if masked == ["Mask blur"] and "Version" not in settings:
        masked = []
    if masked:
        return "inpaint", f"{INPAINTED}: {_said(settings, [*masked, 'Denoising strength'])}"
    # txt2img's hires fix also writes a denoising strength, next to its "Hires ..." settings.
    hires = any(k.startswith("Hires ") or k == "First pass size" for k in settings)
    if "Denoising strength" in settings and not hires:
        return "img2img", f"{REDREW}: {_said(settings, ['Denoising strength'])}"
    return "txt2img", GENERATED + (" and upscaled it with hires fix" if hires else "")


# -- ComfyUI graphs ---------------------------------------------------------------------------
@dataclass
class Node:
    """One ComfyUI node, the same for both formats: its inputs' sources and a few widgets."""

    type: str
    links: dict[str, str]  # input name -> id of the node it comes from
    values: dict[str, Any]  # widget values we read (denoise, start_at_step)


# Inputs that carry the picture itself (images, latents, sigmas): following only these from the
# saved output finds what the pixels came from. A ControlNet or IP-Adapter image enters through
# conditioning or the model, so a pose taken from a photo does not make txt2img an edit.
PIXEL_INPUTS = frozenset(
    {
        "images",
        "image",
        "pixels",
        "samples",
        "latent_image",
        "latent",
        "source",
        "destination",
        "image1",
        "image2",
        "samples_to",
        "samples_from",
        "sigmas",
    }
)
LOADER = re.compile(r"LoadImage(?!Mask)|Image ?Load", re.I)  # an existing picture enters here
INPAINT_NODE = re.compile(r"Inpaint|SetLatentNoiseMask|CompositeMasked|Detailer", re.I)
OUTPUT_NODE = re.compile(r"Save|Preview", re.I)
# Widget positions in the UI-format `widgets_values` (the API format names them).
UI_WIDGETS: dict[str, dict[str, int]] = {
    "KSampler": {"denoise": 6},  # seed, control_after_generate, steps, cfg, sampler, scheduler
    "KSamplerAdvanced": {"start_at_step": 7},
    "BasicScheduler": {"denoise": 2},
}
COMFY_SETTINGS = ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")


def comfy_prompt_graph(data: Any) -> dict[str, Node]:
    """Nodes of an API-format graph (`prompt` chunk): {id: {class_type, inputs}}."""
    graph: dict[str, Node] = {}
    if not isinstance(data, dict):
        return graph
    for key, raw in list(data.items())[:2000]:
        if not isinstance(raw, dict) or "class_type" not in raw:
            continue
        inputs = raw["inputs"] if isinstance(raw.get("inputs"), dict) else {}
        links, values = {}, {}
        for name, value in list(inputs.items())[:200]:
            # A link is [source node id, output slot]; anything else is a widget value.
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                links[str(name)] = str(value[0])
            else:
                values[str(name)] = value
        graph[str(key)] = Node(str(raw["class_type"])[:80], links, values)
    return graph


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def comfy_workflow_graph(data: Any) -> dict[str, Node]:
    """Nodes of a UI-format workflow (`workflow` chunk): nodes[] with input links, links[]."""
    graph: dict[str, Node] = {}
    if not isinstance(data, dict):
        return graph
    origin: dict[str, str] = {}  # link id -> origin node id; links are lists or (newer) dicts
    for link in _list(data.get("links"))[:10_000]:
        if isinstance(link, list) and len(link) >= 2:
            origin[str(link[0])] = str(link[1])
        elif isinstance(link, dict) and "id" in link:
            origin[str(link["id"])] = str(link.get("origin_id"))
    for raw in _list(data.get("nodes"))[:2000]:
        # Muted (2) and bypassed (4) nodes do not run: they are not part of the image.
        if not isinstance(raw, dict) or "type" not in raw or raw.get("mode") in (2, 4):
            continue
        kind = str(raw["type"])[:80]
        links = {
            str(i.get("name")): origin[str(i.get("link"))]
            for i in _list(raw.get("inputs"))[:200]
            if isinstance(i, dict) and str(i.get("link")) in origin
        }
        widgets = _list(raw.get("widgets_values"))
        values = {
            name: widgets[pos]
            for name, pos in UI_WIDGETS.get(kind, {}).items()
            if pos < len(widgets) and name not in links
        }
        graph[str(raw.get("id"))] = Node(kind, links, values)
    return graph


def _upstream(graph: dict[str, Node]) -> list[Node]:
    """Nodes the saved picture comes from, following only picture-carrying inputs."""
    roots = [k for k, n in graph.items() if OUTPUT_NODE.search(n.type)] or list(graph)
    seen, todo = set(roots), list(roots)
    while todo:
        for name, source in graph[todo.pop()].links.items():
            if name in PIXEL_INPUTS and source in graph and source not in seen:
                seen.add(source)
                todo.append(source)
    return [graph[k] for k in seen]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def comfy_edit(graph: dict[str, Node]) -> tuple[Edit, str]:
    """txt2img, img2img or inpaint, from what feeds the saved image."""
    nodes = _upstream(graph)
    loaders = sorted({n.type for n in nodes if LOADER.search(n.type)})
    inpaint = sorted({n.type for n in nodes if INPAINT_NODE.search(n.type)})
    denoise = [d for n in nodes if (d := _number(n.values.get("denoise"))) is not None]
    late_start = [s for n in nodes if (s := _number(n.values.get("start_at_step"))) is not None]
    partial = any(d < 1 for d in denoise) or any(s > 0 for s in late_start)
    strength = f", denoise {min(denoise):g}" if denoise else ""
    # Inpaint nodes without a loaded picture (a detailer pass over its own txt2img output, a
    # noise mask on a generated latent) still make a fully synthetic image.
    if loaders and inpaint:
        via = f"an image from {', '.join(loaders[:3])}, through {', '.join(inpaint[:4])}"
        return "inpaint", f"{INPAINTED}: {via}{strength}"
    if loaders and partial:
        return (
            "img2img",
            f"{REDREW}: an image from {', '.join(loaders[:3])}, partly re-noised{strength}",
        )
    if not any("latent_image" in n.links for n in nodes):
        return "unknown", "wrote a graph with no sampler that feeds the saved image"
    return "txt2img", GENERATED + (
        f" (the loaded image is fully re-noised{strength})" if loaders else ""
    )


def parse_comfy_prompt(data: Any) -> dict[str, Any] | None:
    """Node types, checkpoints and sampler settings from a ComfyUI API-format graph."""
    graph = comfy_prompt_graph(data)
    if not graph:
        return None
    models: list[str] = []
    settings: dict[str, Any] = {}
    for node in graph.values():
        for key in ("ckpt_name", "unet_name", "model_name", "lora_name", "vae_name"):
            if isinstance(node.values.get(key), str):
                models.append(node.values[key][:200])
        for key in COMFY_SETTINGS:
            value = node.values.get(key)
            if isinstance(value, int | float | str):
                settings.setdefault(key, value[:80] if isinstance(value, str) else value)
    edit, did = comfy_edit(graph)
    return {
        "node_types": sorted({n.type for n in graph.values()})[:60],
        "models": sorted(set(models))[:20],
        "settings": settings,
        "edit": edit,
        "did": did,
    }


def parse_comfy_workflow(data: Any) -> dict[str, Any] | None:
    """Node types and checkpoint names from a ComfyUI UI-format workflow."""
    graph = comfy_workflow_graph(data)
    if not graph:
        return None
    nodes = [n for n in _list(data.get("nodes"))[:2000] if isinstance(n, dict) and "type" in n]
    models = [
        str(v)[:200]
        for n in nodes
        if "Loader" in str(n["type"])
        for v in (n.get("widgets_values") or [])[:3]
        if isinstance(v, str) and re.search(r"\.(safetensors|ckpt|pt|gguf|bin)$", v)
    ]
    edit, did = comfy_edit(graph)
    return {
        "node_types": sorted({str(n["type"])[:80] for n in nodes})[:60],
        "models": sorted(set(models))[:20],
        "edit": edit,
        "did": did,
    }


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    return {k: clip(data[k], 300) for k in keys if k in data}


def invoke_edit(mode: str, params: dict[str, str]) -> tuple[Edit, str]:
    """InvokeAI's `generation_mode` ("txt2img", "sdxl_inpaint", "flux_outpaint", ...)."""
    kind = mode.rsplit("_", 1)[-1]
    if kind == "outpaint":  # new content around an existing picture: a masked, local edit
        return "inpaint", "outpainted (extended) an existing image"
    if kind == "inpaint":
        return "inpaint", INPAINTED
    if kind == "img2img":
        return "img2img", REDREW + (
            f": strength {params['strength']}" if "strength" in params else ""
        )
    if kind == "txt2img":
        return "txt2img", GENERATED
    return "unknown", UNSTATED


def identify(key: str, value: str) -> Found | None:
    """What a known generator recorded in this chunk, or None when no generator wrote it."""
    low = key.lower()
    if low == "parameters":
        if (a1111 := parse_a1111(value)) is not None:
            return Found("Stable Diffusion (A1111/Forge)", *a1111_edit(a1111["settings"]), a1111)
        data = _json(value)
        if isinstance(data, dict) and ("prompt" in data or "base_model" in data):
            keys = ("prompt", "negative_prompt", "steps", "seed", "base_model", "sampler")
            return Found("Fooocus", "unknown", UNSTATED, _pick(data, keys))
    if low in ("prompt", "workflow"):
        data = _json(value)
        parsed = parse_comfy_prompt(data) if low == "prompt" else parse_comfy_workflow(data)
        if parsed is not None:
            return Found("ComfyUI", parsed["edit"], parsed.pop("did"), parsed)
    if low in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "sd_metadata"):
        data = _json(value)
        if isinstance(data, dict):
            keys = ("positive_prompt", "prompt", "model", "seed", "steps", "generation_mode")
            params = _pick(data, (*keys, "strength"))
            edit, did = invoke_edit(params.get("generation_mode", ""), params)
            return Found("InvokeAI", edit, did, params)
    if low == "dream" and _DREAM.match(value):
        return Found("InvokeAI/lstein Dream", "unknown", UNSTATED, {"dream": clip(value, 500)})
    if low == "fooocus_scheme":
        return Found("Fooocus", "unknown", UNSTATED, {"scheme": clip(value, 40)})
    if low == "comment" and (data := _json(value)) and isinstance(data, dict):
        if {"steps", "sampler"} <= set(data) or {"prompt", "scale"} <= set(data):
            keys = ("prompt", "uc", "steps", "scale", "seed", "sampler")
            return Found("NovelAI", "unknown", UNSTATED, _pick(data, keys))
    if low == "software" and re.fullmatch(r"\s*NovelAI\s*", value):
        return Found("NovelAI", "unknown", UNSTATED, {"software": value.strip()})
    if low in ("description", "comment") and _MJ_JOB.search(value):
        return Found("Midjourney", "unknown", UNSTATED, {"description": clip(value, 500)})
    return None


def _evidence(key: str, value: str, found: Found, label: Label) -> Evidence:
    return Evidence(
        kind="generator.parameters",
        summary=f"{found.generator} {found.did} (text chunk '{clip(key, 40)}' = "
        f"'{clip(value, 120)}')",
        value=found.generator,
        proves=label,
    )


@register_expert
class GeneratorMetadataExpert(Expert):
    spec = ExpertSpec(
        name="generator_metadata",
        version="1.1",
        kind="provenance",
        targets="ai_generated",
        description="Generator parameters in text chunks/comments (A1111 'parameters', ComfyUI "
        "'prompt'/'workflow', NovelAI, InvokeAI, Fooocus, Midjourney, Dream). Text-to-image "
        "parameters prove AI generation; inpainting or img2img parameters (A1111 mask settings, "
        "ComfyUI inpaint nodes or a loaded image partly re-noised) prove a diffusion edit of an "
        "existing image (tampered). Abstains when none are present.",
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
        found: dict[str, Found] = {}
        hint: Evidence | None = None
        for key, value in chunks.items():
            if (record := identify(key, value)) is not None:
                found[key] = record
            elif hint is None and (name := match_any(value[:5000], GENERATORS)):
                hint = Evidence(
                    kind="generator.hint",
                    value=name,
                    summary=f"text chunk '{clip(key, 40)}' = '{clip(value, 120)}' mentions {name}",
                )
        parsed = {k: {"generator": f.generator, **f.params} for k, f in found.items()}
        details: dict[str, Any] = {"chunk_keys": sorted(chunks)[:MAX_CHUNKS], "parsed": parsed}
        if found:
            edit = max((f.edit for f in found.values()), key=lambda e: EDIT_RANK[e])
            # One label for every chunk: a ComfyUI `workflow` is the same run as its `prompt`,
            # and proofs that disagree would be settled by a vote, not by what happened.
            label: Label = "tampered" if edit in ("inpaint", "img2img") else "ai_generated"
            details.update(method="diffusion", edit=edit)
            details["scope"] = "local" if edit == "inpaint" else "global"
            evidence = [_evidence(k, chunks[k], f, label) for k, f in found.items()]
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
