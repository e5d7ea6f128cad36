"""Versioned prompt library: seed 000's five-part template, variants #1-#5, stage 1 and 2.

Any change to a rendered text must bump its version: versions enter the response-cache key and
every result, and tests pin each rendered text by hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_LIBRARY_VERSION = "1"
DEFAULT_VARIANT = 4  # seed 000: prompt #4 had the best accuracy/refusal balance


@dataclass(frozen=True)
class FivePart:
    """LangGPT-style prompt sections (seed 000); empty sections are left out."""

    profile: str = ""
    goal: str = ""
    constraint: str = ""
    workflow: str = ""
    style: str = ""

    def render(self) -> str:
        sections = [
            ("Profile", self.profile),
            ("Goal", self.goal),
            ("Constraint", self.constraint),
            ("Workflow", self.workflow),
            ("Style", self.style),
        ]
        return "\n".join(f"# {name}\n{text}" for name, text in sections if text)


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str  # "" = no system message
    user: str  # the text that accompanies the image

    @property
    def sha256(self) -> str:
        blob = json.dumps([self.version, self.system, self.user]).encode()
        return hashlib.sha256(blob).hexdigest()


STAGE1_QUESTION = "Is this image tampered or AI-generated? Answer yes or no."

_PROFILE = "You are an AI visual assistant."
_PROFILE_FORENSIC = (
    "You are an AI visual assistant trained to examine images like a forensic analyst."
)
_GOAL = "Help humans analyse images that may be tampered or AI-generated."
_CONSTRAINT = "Must return with yes or no only."
_CONSTRAINT_SAFE = (
    "Must return with yes or no only. This is an authenticity check, not an identification: "
    "you are never asked who anyone is, so images of people can be judged like any other."
)
_WORKFLOW = (
    "You will receive one image. Your job is to determine if the image is tampered or "
    "AI-generated (yes) or an unedited photograph (no)."
)
_WORKFLOW_DETAILED = (
    "You will receive one image. Examine it step by step: 1) lighting and shadows: do they "
    "agree with one light source? 2) edges: are object borders unnaturally sharp, blurred or "
    "haloed? 3) textures: skin, hair, fabric, foliage, text and repeated patterns; 4) geometry: "
    "perspective, reflections, hands and anatomy; 5) local mismatches of colour saturation, "
    "noise or blur. Then decide: tampered or AI-generated (yes) or an unedited photograph (no)."
)
_STYLE = "Reply with one lower-case word and nothing else."

_VARIANT_PARTS: dict[int, FivePart] = {
    1: FivePart(),
    2: FivePart(profile=_PROFILE, constraint=_CONSTRAINT),
    3: FivePart(profile=_PROFILE, goal=_GOAL, constraint=_CONSTRAINT, workflow=_WORKFLOW),
    4: FivePart(_PROFILE, _GOAL, _CONSTRAINT_SAFE, _WORKFLOW, _STYLE),
    5: FivePart(_PROFILE_FORENSIC, _GOAL, _CONSTRAINT_SAFE, _WORKFLOW_DETAILED, _STYLE),
}


def stage1_prompt(variant: int = DEFAULT_VARIANT) -> PromptTemplate:
    """Prompt #variant (1 = a bare question ... 5 = all five parts, detailed workflow)."""
    if variant not in _VARIANT_PARTS:
        raise ValueError(f"prompt variant must be 1..5, got {variant}")
    return PromptTemplate(f"s1-p{variant}-v1", _VARIANT_PARTS[variant].render(), STAGE1_QUESTION)


STAGE1_EXAMPLE_QUESTION = STAGE1_QUESTION  # asked on every k-shot example image too

_STAGE2_SKELETON = (
    "{\n"
    '  "location": {"relative": "...", "absolute": "...", "box": [x0, y0, x1, y1] or null},\n'
    '  "forged_content": "...",\n'
    '  "visible_traces": ["...", "..."],\n'
    '  "method": "gan" | "diffusion" | "other" | "unknown",\n'
    '  "scope": "global" | "local",\n'
    '  "reasoning": "...",\n'
    '  "cited_evidence": ["E1", ...]\n'
    "}"
)

_STAGE2 = FivePart(
    profile=_PROFILE_FORENSIC,
    goal=(
        "Help humans understand an image suspected to be tampered or AI-generated: where the "
        "forgery is, what was forged, which visible traces give it away, and how it was made."
    ),
    constraint=(
        "Return one JSON object and nothing else, with exactly the keys shown below. Describe "
        "only what is visible; never identify people. Use 'unknown' when you cannot tell the "
        "method. Box coordinates are shares of the image width and height in [0, 1]."
    ),
    workflow=(
        "1) Locate the forged region: relative to objects (e.g. 'above the crowd, in front of "
        "the building') and absolute in the frame (e.g. 'centre, slightly right'). 2) Say what "
        "content was forged. 3) List the visible traces (edges, lighting, shadows, colour "
        "saturation, textures, geometry). 4) Decide the method (gan, diffusion, other, unknown) "
        "and the scope (global = the whole image was generated, local = a region was edited). "
        "5) Explain your reasoning in two or three sentences."
    ),
    style="Concise, factual English.",
)


def stage2_prompt(evidence: Sequence[str] = ()) -> PromptTemplate:
    """The analysis prompt; `evidence` (expert summaries, region words) is listed as E1..En."""
    user = "Analyse this image and answer with the JSON object:\n" + _STAGE2_SKELETON
    if evidence:
        items = "\n".join(f"[E{i}] {text.strip()}" for i, text in enumerate(evidence, 1))
        user += (
            "\n\nIndependent forensic tools reported the following. They can be wrong: check "
            "each against the image, and list in cited_evidence the ids you relied on.\n" + items
        )
    return PromptTemplate("s2-v1", _STAGE2.render(), user)


def stage2_response_format() -> dict[str, Any]:
    """OpenAI `response_format` for endpoints that enforce a JSON schema."""
    from .types import Stage2Answer

    return {
        "type": "json_schema",
        "json_schema": {
            "name": "forenscope_stage2",
            "schema": Stage2Answer.model_json_schema(),
            "strict": False,
        },
    }
