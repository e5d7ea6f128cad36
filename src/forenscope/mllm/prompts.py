"""Prompt sets as data: versioned TOML files, the shipped one and users' own (`--prompts FILE`,
or `pipeline.prompts` in the LLM config).

The shipped set, `prompt_sets/five-principles-v1.toml`, is structured after seed 000's five
principles (profile, goal, constraint, workflow, style) and its variants #1-#5; its texts are
reconstructions, not the paper's Figure 4 texts. `forenscope llm prompts` prints it, as a start
for your own.

File format 1::

    format = 1                      # required
    name = "my-prompts"             # required
    version = "1"                   # required: the set's version
    description = "..."             # optional

    [stage1]
    question = "Is this image tampered or AI-generated? Answer yes or no."  # with every image

    [stage1.variants.4]             # one table per variant number (1, 2, ...)
    version = "mine-p4-v1"          # required, unique in the file
    profile = "..."                 # the five sections, each optional; empty ones are left out
    goal = "..."
    constraint = "..."
    workflow = "..."
    style = "..."

    [stage2]                        # optional: the shipped stage 2 when absent
    version = "mine-s2-v1"
    profile = "..."                 # ... the five sections, as above
    question = "Analyse this image and answer with the JSON object:\\n{skeleton}"
    evidence_intro = "\\n\\nTools reported (they can be wrong):\\n"   # before [E1] ... [En]

The sections render as a system message ("# Profile\\n...\\n# Goal\\n..."); the question is the
user text next to the image (and next to every k-shot example). `{skeleton}` in the stage-2
question is replaced by the JSON shape of the answer, which the Stage2Answer schema fixes.
Unknown keys are refused, so a typo cannot silently drop a section. Any change to a rendered
text needs a new version: versions are recorded in every result and, with each text's sha256,
key the response cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROMPT_LIBRARY_VERSION = "1"
DEFAULT_VARIANT = 4  # seed 000: prompt #4 had the best accuracy/refusal balance
SHIPPED = "five-principles-v1.toml"
FORMAT = 1
_SECTIONS = ("profile", "goal", "constraint", "workflow", "style")


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


@dataclass(frozen=True)
class Stage2Prompt:
    version: str
    parts: FivePart
    question: str  # contains {skeleton}
    evidence_intro: str


@dataclass(frozen=True)
class PromptSet:
    """A prompt file, validated: stage-1 variants and the stage-2 prompt."""

    name: str
    version: str
    question: str
    variants: dict[int, tuple[str, FivePart]]  # variant -> (version, sections)
    stage2_prompt: Stage2Prompt
    description: str = ""
    source: str = ""  # the file it came from
    sha256: str = ""  # of the file's bytes
    notes: list[str] = field(default_factory=list)

    def stage1(self, variant: int = DEFAULT_VARIANT) -> PromptTemplate:
        if variant not in self.variants:
            have = ", ".join(map(str, sorted(self.variants)))
            raise ValueError(f"prompt variant must be one of {have} in {self.name}, got {variant}")
        version, parts = self.variants[variant]
        return PromptTemplate(version, parts.render(), self.question)

    def stage2(self, evidence: Sequence[str] = ()) -> PromptTemplate:
        s2 = self.stage2_prompt
        user = s2.question.replace("{skeleton}", _STAGE2_SKELETON)
        if evidence:
            items = "\n".join(f"[E{i}] {text.strip()}" for i, text in enumerate(evidence, 1))
            user += s2.evidence_intro + items
        return PromptTemplate(s2.version, s2.parts.render(), user)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "source": self.source,
                "sha256": self.sha256, "notes": list(self.notes)}  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> PromptSet:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the prompt file {path}: {exc}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, source: str) -> PromptSet:
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{source}: not a valid TOML prompt file: {exc}") from None
        return _from_doc(doc, source, hashlib.sha256(data).hexdigest())


def _fail(source: str, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {problem} (format: see forenscope.mllm.prompts)")


def _table(doc: Mapping[str, Any], key: str, allowed: set[str], source: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise _fail(source, key, "missing or not a table")
    unknown = set(value) - allowed
    if unknown:
        raise _fail(source, key, f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return value


def _text(table: Mapping[str, Any], key: str, where: str, source: str, required: bool) -> str:
    value = table.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(source, f"{where}.{key}", "must be a non-empty string" if required else
                    "must be a string")  # fmt: skip
    return value


def _parts(table: Mapping[str, Any], where: str, source: str) -> FivePart:
    return FivePart(**{s: _text(table, s, where, source, False) for s in _SECTIONS})


def _from_doc(doc: dict[str, Any], source: str, sha: str) -> PromptSet:
    unknown = set(doc) - {"format", "name", "version", "description", "stage1", "stage2"}
    if unknown:
        raise _fail(source, "top level", f"unknown keys {sorted(unknown)}")
    if doc.get("format") != FORMAT:
        raise _fail(source, "format", f"must be {FORMAT}, got {doc.get('format')!r}")
    s1 = _table(doc, "stage1", {"question", "variants"}, source)
    raw = s1.get("variants")
    if not isinstance(raw, dict) or not raw:
        raise _fail(source, "stage1.variants", "needs at least one [stage1.variants.N] table")
    variants: dict[int, tuple[str, FivePart]] = {}
    for key in raw:
        where = f"stage1.variants.{key}"
        if not str(key).isdigit() or int(key) < 1:
            raise _fail(source, where, "variant names are numbers from 1")
        table = _table(raw, key, {"version", *_SECTIONS}, source)
        variants[int(key)] = (_text(table, "version", where, source, True), _parts(table, where,
                              source))  # fmt: skip
    notes: list[str] = []
    if "stage2" in doc:
        t2 = _table(doc, "stage2", {"version", "question", "evidence_intro", *_SECTIONS}, source)
        stage2 = Stage2Prompt(
            _text(t2, "version", "stage2", source, True), _parts(t2, "stage2", source),
            _text(t2, "question", "stage2", source, True),
            _text(t2, "evidence_intro", "stage2", source, True),
        )  # fmt: skip
        if "{skeleton}" not in stage2.question:
            raise _fail(source, "stage2.question", "must contain {skeleton} (the answer's shape)")
    else:
        stage2 = default_prompts().stage2_prompt
        notes.append(f"stage 2 from the shipped set ({SHIPPED})")
    versions = [v for v, _ in variants.values()] + [stage2.version]
    if len(set(versions)) != len(versions):
        raise _fail(source, "versions", f"each prompt needs its own version, got {versions}")
    return PromptSet(
        name=_text(doc, "name", "top level", source, True),
        version=str(doc.get("version", "")) or "unversioned",
        question=_text(s1, "question", "stage1", source, True),
        variants=dict(sorted(variants.items())), stage2_prompt=stage2,
        description=str(doc.get("description", "")), source=source, sha256=sha, notes=notes,
    )  # fmt: skip


def shipped_text() -> str:
    """The shipped prompt file, as text (a starting point for your own)."""
    return (resources.files(__package__) / "prompt_sets" / SHIPPED).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def default_prompts() -> PromptSet:
    data = shipped_text().encode("utf-8")
    return PromptSet.parse(data, f"forenscope.mllm/prompt_sets/{SHIPPED}")


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> PromptSet:
    return PromptSet.load(path)


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """The prompt set in `path`, or the shipped one when None."""
    if path is None:
        return default_prompts()
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"cannot read the prompt file {p}: {exc}") from None
    return _load_cached(str(p.resolve()), mtime)


def stage1_prompt(
    variant: int = DEFAULT_VARIANT, prompts: PromptSet | None = None
) -> PromptTemplate:
    """Prompt #variant of `prompts` (the shipped set by default: 1 = a bare question ... 5 = all
    five sections with a detailed workflow)."""
    return (prompts or default_prompts()).stage1(variant)


def stage2_prompt(evidence: Sequence[str] = (), prompts: PromptSet | None = None) -> PromptTemplate:
    """The analysis prompt; `evidence` (expert summaries, region words) is listed as E1..En."""
    return (prompts or default_prompts()).stage2(evidence)


STAGE1_QUESTION = default_prompts().question
STAGE1_EXAMPLE_QUESTION = STAGE1_QUESTION  # asked on every k-shot example image too


def stage2_response_format() -> dict[str, Any]:
    """OpenAI `response_format` for endpoints that enforce a JSON schema."""
    from ..types.llm import Stage2Answer

    return {
        "type": "json_schema",
        "json_schema": {
            "name": "forenscope_stage2",
            "schema": Stage2Answer.model_json_schema(),
            "strict": False,
        },
    }
