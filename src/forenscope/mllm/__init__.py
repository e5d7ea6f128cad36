"""Multimodal LLM engine: prompts, k-shot examples, scoring, parsing and an async backend.

Kept light on import: httpx is imported only by `client` (and the modules that use it), so
`import forenscope.mllm` costs nothing. Entry points: `MLLMEngine` in `runner`, the result
models in `types`, the prompt library in `prompts`, the stages inside an analysis in `assess`
(`forenscope.analyze(path, llm=load_config(...))`). The client engine only: Forenscope served
as an OpenAI-compatible model lives in `forenscope.service.openai`.
"""

from __future__ import annotations

from ..types.llm import LLMAssessment, Location, Stage1Result, Stage2Answer, Stage2Result

__all__ = ["LLMAssessment", "Location", "Stage1Result", "Stage2Answer", "Stage2Result"]
