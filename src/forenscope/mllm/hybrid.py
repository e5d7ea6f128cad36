"""Hybrid mode (seed 000): experts offered to the LLM as tools, their evidence injected into
stage 2, and a comparison of where the LLM and the experts agree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from ..errors import UnknownExpertError
from ..types import ErrorInfo, ExpertResult
from ..types.llm import Agreement, Stage1Result, Stage2Result, ToolCall, Usage
from .errors import LLMError
from .parsing import parse_analysis
from .request import answer_texts, build_messages, build_request

__all__ = [
    "Agreement", "ToolCall", "analyze_with_tools", "compare", "evidence_texts",
    "expert_summary", "expert_tools",
]  # fmt: skip

TOOL_PREFIX = "expert_"
HYBRID_PROMPT_VERSION = "s2-tools-v1"
_TOOL_HINT = (
    "\n\nYou may call the forensic expert tools first; each runs on this same image and "
    "returns a score (higher = more suspicious) and checkable evidence. Then answer with the "
    "JSON object, listing in cited_evidence the names of the experts you relied on."
)


def evidence_texts(results: Sequence[ExpertResult], limit: int = 12) -> list[str]:
    """One line per evidence item of judged experts, strongest experts first (for stage 2)."""
    judged = sorted((r for r in results if r.judged), key=lambda r: -(r.score or 0.0))
    lines = [f"{r.expert} (score {r.score:.2f}): {e.summary}" for r in judged for e in r.evidence]
    return lines[:limit]


def expert_summary(result: ExpertResult) -> dict[str, Any]:
    """What a tool call returns to the LLM: small, and only checkable facts."""
    return {
        "expert": result.expert,
        "score": None if result.score is None else round(result.score, 3),
        "abstained": result.abstain_reason,
        "evidence": [e.summary for e in result.evidence[:8]],
    }


def expert_tools(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI `tools` entries, one per registered expert (no arguments: the image is implicit)."""
    from ..experts import get_expert, list_experts

    out = []
    for name in names if names is not None else list_experts():
        spec = get_expert(name).spec
        out.append(
            {
                "type": "function",
                "function": {
                    "name": TOOL_PREFIX + name,
                    "description": f"{spec.description} (evidence of: {spec.targets})",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        )
    return out


def compare(stage1: Stage1Result, experts: Sequence[ExpertResult]) -> list[Agreement]:
    """Per judged expert: does it side with the LLM's stage-1 verdict? (Abstentions skipped.)"""
    p = stage1.probability
    if p is None:
        return []
    return [
        Agreement(
            expert=r.expert,
            expert_score=r.score,
            llm_probability=p,
            agrees=(r.score >= 0.5) == (p >= 0.5),
        )
        for r in experts
        if r.judged and r.score is not None
    ]


async def analyze_with_tools(
    engine: Any,
    image: Any,
    *,
    tools: Sequence[str] | None = None,
    max_rounds: int = 3,
    results: Sequence[ExpertResult] | None = None,
    evidence: Sequence[str] = (),
) -> tuple[Stage2Result, list[ToolCall]]:
    """Stage 2 where the LLM may call experts as tools before answering (not cached: the
    conversation depends on the tool results).

    `image` is a path or an ImageInput. With `results` (experts already run by the pipeline)
    a tool call answers from them instead of running the expert again, and only those experts
    are offered. `evidence` lines are listed in the prompt as E1..En, as in plain stage 2.
    """
    from ..io.image import load_image
    from ..io.input import ImageInput
    from .image import encode_image

    config = engine.config
    img_input = image if isinstance(image, ImageInput) else load_image(image)
    done = {r.expert: r for r in results} if results is not None else None
    if done is not None and tools is None:
        tools = list(done)
    template = engine.prompts.stage2(evidence)
    query = encode_image(img_input, config.image_policy)
    messages = build_messages(template, query)
    messages[-1]["content"][0]["text"] += _TOOL_HINT
    res = Stage2Result(
        status="error",
        prompt_version=HYBRID_PROMPT_VERSION,
        model=config.model,
        evidence_shown=list(evidence),
    )
    calls: list[ToolCall] = []
    usages: list[Usage] = []
    offered = expert_tools(tools)
    try:
        text = await _tool_loop(engine, img_input, messages, offered, calls, usages, max_rounds,
                                done)  # fmt: skip
    except LLMError as exc:
        error = ErrorInfo(type=type(exc).__name__, message=str(exc)[:500])
        return res.model_copy(update={"usage": sum(usages, res.usage), "error": error}), calls
    answer, parsed, status = parse_analysis(text)
    return res.model_copy(update={
        "status": status, "answer": answer, "raw": text or "", "parsed": parsed,
        "evidence_shown": [*evidence, *(json.dumps(c.result) for c in calls)],
        "usage": sum(usages, res.usage),
    }), calls  # fmt: skip


async def _run_tool(
    name: str, img_input: Any, done: dict[str, ExpertResult] | None
) -> dict[str, Any]:
    from ..experts import get_expert

    if done is not None:  # the pipeline already ran the experts: answer from their results
        if name in done:
            return expert_summary(done[name])
        return {"error": f"no expert named {name!r} ran on this image"}
    try:
        expert = get_expert(name)
    except UnknownExpertError as exc:
        return {"error": str(exc)}
    return expert_summary(await asyncio.to_thread(expert.analyze, img_input))


async def _tool_loop(
    engine: Any,
    img_input: Any,
    messages: list[dict[str, Any]],
    offered: list[dict[str, Any]],
    calls: list[ToolCall],
    usages: list[Usage],
    max_rounds: int,
    done: dict[str, ExpertResult] | None = None,
) -> str | None:
    """Until the LLM answers without calling tools; the last round offers no tools. Each
    round's tool calls and usage are appended to `calls` and `usages` as they come."""
    for round_ in range(max_rounds + 1):
        body = build_request(engine.config.model, messages, max_tokens=800)
        if round_ < max_rounds:
            body["tools"] = offered
        resp = await engine.client.complete(body)
        usages.append(resp.usage)
        message = (resp.data.get("choices") or [{}])[0].get("message") or {}
        tool_calls = message.get("tool_calls") or []
        if not tool_calls or round_ == max_rounds:
            return (answer_texts(resp.data) or [None])[0]
        messages.append(
            {"role": "assistant", "content": message.get("content"), "tool_calls": tool_calls}
        )
        for call in tool_calls:
            name = str(call["function"]["name"]).removeprefix(TOOL_PREFIX)
            summary = await _run_tool(name, img_input, done)
            calls.append(ToolCall(name=name, result=summary))
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.get("id", name),
                    "content": json.dumps(summary),
                }
            )
    return None
