"""Backend configuration: a JSON/YAML file and FORENSCOPE_LLM_* env; API keys only from env."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError, MissingDependencyError
from .image import Detail, ImagePolicy

Flavor = Literal["openai", "vllm", "ollama", "llamacpp", "generic"]


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vision: bool = True
    json_schema: bool = False  # honours response_format {"type": "json_schema"}
    logprobs: bool = False  # returns choices[].logprobs.content[].top_logprobs
    n: bool = False  # honours n > 1 in one request
    max_top_logprobs: int = 20


# What each server family supports on /v1/chat/completions. Ollama ignores `n` and only
# returns logprobs from v0.12.11; llama.cpp's server returns OpenAI-shaped logprobs on its /v1
# route (its native /completion uses `completion_probabilities`).
FLAVOR_CAPABILITIES: dict[str, dict[str, Any]] = {
    "openai": {"json_schema": True, "logprobs": True, "n": True},
    "vllm": {"json_schema": True, "logprobs": True, "n": True},
    "ollama": {"json_schema": True, "logprobs": True, "n": False},
    "llamacpp": {"json_schema": True, "logprobs": True, "n": False},
    "generic": {},
}


Scoring = Literal["votes", "logprobs", "auto"]
SCORING_RULES: dict[str, str] = {
    "votes": "votes (seed 000): P = yes / (yes + no) over n sampled answers; refusals and "
    "undetermined answers are counted, never votes",
    "logprobs": "token log-probs: P = P(yes) / (P(yes) + P(no)) at the first answer token "
    "(not the paper's protocol)",
    "auto": "log-probs where the flavor claims them, else votes (not the paper's protocol)",
}


STAGE1_KNOBS = ("variant", "k", "n", "seed", "scoring", "temperature")


class PipelineOptions(BaseModel):
    """The protocol of the MLLM stages: what `analyze(..., llm=config)`, `forenscope llm`,
    `eval run --system llm:CFG` and `eval ablate` run on each image, unless overridden.

    Defaults: seed 000's prompt #4 and its scoring (the mean of n yes/no votes); stage 2 only
    where the LLM or the experts find the image suspicious."""

    model_config = ConfigDict(extra="forbid")

    variant: int = Field(default=4, ge=1, le=5, description="stage-1 prompt variant")
    prompts: str | None = Field(
        default=None, description="a prompt-set TOML file (default: the shipped set)"
    )
    scoring: Scoring = Field(default="votes", description="; ".join(SCORING_RULES.values()))
    n: int = Field(default=5, ge=1, le=64, description="votes when scoring by votes")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    k: int = Field(default=0, ge=0, le=16, description="k-shot examples drawn from `pool`")
    pool: str | None = Field(default=None, description="folder or manifest of labelled examples")
    seed: int = 0
    stage2: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto = when the LLM says yes or the experts' label is not real"
    )
    stage2_k: int = Field(
        default=0,
        ge=0,
        le=8,
        description="stage-2 in-context examples: forged images of `pool` shown with their true "
        "method, scope and place (a manifest pool with family, scope and mask columns)",
    )
    tools: bool = Field(default=False, description="offer the experts as tools in stage 2")
    max_evidence: int = Field(default=12, ge=0, le=40, description="evidence lines shown")

    @model_validator(mode="after")
    def _pool_for_k(self) -> PipelineOptions:
        if self.k > 0 and not self.pool:
            raise ValueError("pipeline.k > 0 needs pipeline.pool (labelled example images)")
        if self.stage2_k > 0 and not self.pool:
            raise ValueError("pipeline.stage2_k > 0 needs pipeline.pool (a manifest with scope)")
        return self

    def overridden(self, changes: Mapping[str, Any]) -> PipelineOptions:
        """A validated copy with `changes` applied; None means "keep this block's value".

        The one way a caller (a CLI option, an ablation cell, a protocol preset) changes the
        protocol: unknown names and out-of-range values are ConfigErrors, as in the file."""
        given = {name: value for name, value in changes.items() if value is not None}
        unknown = sorted(set(given) - set(type(self).model_fields))
        if unknown:
            raise ConfigError(f"unknown pipeline setting(s): {', '.join(unknown)}")
        try:
            return type(self).model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(f"invalid pipeline setting: {exc}") from None

    def stage1_knobs(self) -> dict[str, Any]:
        """The knobs that decide a stage-1 score (the run identity of an LLM evaluation)."""
        return {name: getattr(self, name) for name in STAGE1_KNOBS}


def planned_scoring(scoring: Scoring, caps: Capabilities) -> Literal["votes", "logprobs"]:
    """The scoring tried first: 'auto' means log-probs when the capabilities claim them. (A
    log-prob run still falls back to votes per image when the endpoint returns none.)"""
    if scoring == "auto":
        return "logprobs" if caps.logprobs else "votes"
    return scoring


class LLMConfig(BaseModel):
    """Where and how to call an OpenAI-compatible chat-completions endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="e.g. https://api.openai.com/v1, http://127.0.0.1:8000/v1")
    model: str
    flavor: Flavor = "generic"
    api_key_env: str | None = Field(
        default=None, description="NAME of the env var that holds the key (never the key)"
    )
    capabilities: dict[str, Any] = Field(default_factory=dict, description="overrides")
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    retry_after_max_s: float = Field(default=120.0, ge=0)
    concurrency: int = Field(default=4, ge=1)
    image_max_side: int = Field(default=1024, ge=64)
    image_detail: Detail = "auto"
    jpeg_quality: int = Field(default=90, ge=30, le=100)
    image_mode: Literal["separate", "collage"] = Field(
        default="separate",
        description="separate: one image per k-shot turn; collage: examples and query tiled into "
        "one numbered image, the layout stated in the prompt, for servers that take one image "
        "per request (e.g. Llama 3.2 Vision on Ollama)",
    )
    send_original_bytes: bool = Field(
        default=False,
        description="send a JPEG or PNG file's own bytes when it fits image_max_side, instead of "
        "a JPEG re-encoding (other formats and larger images are still re-encoded). Off by "
        "default: one format for every image keeps the source format from the model",
    )
    price_prompt_per_1m: float | None = None
    price_completion_per_1m: float | None = None
    cache: bool = True
    audit_log: str | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)
    token_limit_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="newer OpenAI models only accept max_completion_tokens"
    )
    pipeline: PipelineOptions = Field(default_factory=PipelineOptions)

    @property
    def caps(self) -> Capabilities:
        return Capabilities(**{**FLAVOR_CAPABILITIES[self.flavor], **self.capabilities})

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @property
    def image_policy(self) -> ImagePolicy:
        return ImagePolicy(
            self.image_max_side,
            self.jpeg_quality,
            self.image_detail,
            reencode=not self.send_original_bytes,
        )

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


_ENV_KEYS = {
    "FORENSCOPE_LLM_BASE_URL": "base_url",
    "FORENSCOPE_LLM_MODEL": "model",
    "FORENSCOPE_LLM_FLAVOR": "flavor",
    "FORENSCOPE_LLM_API_KEY_ENV": "api_key_env",
    "FORENSCOPE_LLM_CONCURRENCY": "concurrency",
    "FORENSCOPE_LLM_TIMEOUT": "timeout_s",
    "FORENSCOPE_LLM_AUDIT_LOG": "audit_log",
}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the LLM config {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError as exc:
            raise MissingDependencyError("YAML LLM config", "pyyaml", "llm") from exc
        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data.get("llm", data) if isinstance(data.get("llm"), dict) else data


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
    """File values, overridden by FORENSCOPE_LLM_* env; unknown keys and inline keys rejected."""
    env = os.environ if env is None else env
    data: dict[str, Any] = _read_file(Path(path)) if path else {}
    for var, key in _ENV_KEYS.items():
        if env.get(var):
            data[key] = env[var]
    if env.get("FORENSCOPE_LLM_CAPABILITIES"):
        names = [c.strip() for c in env["FORENSCOPE_LLM_CAPABILITIES"].split(",") if c.strip()]
        data["capabilities"] = {**data.get("capabilities", {}), **dict.fromkeys(names, True)}
    if "api_key" in data:
        raise ConfigError("API keys are read from the environment only: set api_key_env")
    try:
        return LLMConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid LLM config: {exc}") from None
