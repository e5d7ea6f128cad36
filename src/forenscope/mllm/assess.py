"""The MLLM stages inside one analysis: detect, then analyse grounded on the report, compare.

`analyze(..., llm=config)` calls `assess` after the experts, fusion and localization. The
experts' verdict is never replaced: the LLM's answers are recorded next to it, with where they
agree or disagree, which evidence was shown (ids E1..En) and which ids the LLM cited.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from ..io.input import ImageInput
from ..types import Report
from ..types.llm import (
    EvidenceItem,
    LLMAssessment,
    Stage1Result,
    Stage2Result,
    ToolCall,
    Usage,
    VerdictAgreement,
)
from .config import LLMConfig
from .hybrid import HYBRID_PROMPT_VERSION, analyze_with_tools, compare
from .runner import MLLMEngine

MAX_REGIONS_SHOWN = 3
_ID = re.compile(r"^\[?\s*(E\d+)\s*\]?$", re.IGNORECASE)


def expert_evidence(report: Report, limit: int) -> list[tuple[str, str]]:
    """(expert, line) for evidence of judged experts, strongest experts first."""
    judged = sorted((r for r in report.experts if r.judged), key=lambda r: -(r.score or 0.0))
    lines = [
        (r.expert, f"{r.expert} (score {r.score:.2f}): {e.summary}")
        for r in judged
        for e in r.evidence
    ]
    return lines[:limit]


def evidence_items(report: Report, limit: int = 12, *, experts: bool = True) -> list[EvidenceItem]:
    """What stage 2 is shown: expert evidence (unless the experts come as tools) and the
    fused map's regions in words, numbered E1..En in the order they are listed."""
    rows: list[tuple[Literal["expert", "region"], str, str | None]] = []
    if experts:
        rows += [("expert", line, name) for name, line in expert_evidence(report, limit)]
    # Region descriptions already say where, how big and which experts flagged them.
    rows += [("region", r.description, None) for r in report.regions[:MAX_REGIONS_SHOWN]]
    if report.faces:  # named facial parts let the LLM speak of "the left eye", not "upper middle"
        from ..faces import faces_for_prompt

        rows.append(
            (
                "region",
                faces_for_prompt(report.faces, report.image.width, report.image.height),
                None,
            )
        )
    return [
        EvidenceItem(id=f"E{i}", text=text, source=source, expert=expert)
        for i, (source, text, expert) in enumerate(rows, 1)
    ]


def verdict_agreement(report: Report, stage1: Stage1Result) -> VerdictAgreement:
    """The LLM's yes/no against the experts' label (anything but 'real' counts as 'yes')."""
    if stage1.probability is None:
        return "no_llm_answer"
    if report.verdict.decided_by == "none" or not report.verdict.decided:
        return "experts_undecided"
    experts_yes = report.verdict.label != "real"
    return "agree" if experts_yes == (stage1.probability >= 0.5) else "disagree"


def resolve_citations(
    cited: Sequence[str], shown: Sequence[EvidenceItem]
) -> tuple[list[EvidenceItem], list[str]]:
    """(shown items the LLM cited, cited ids it was never shown). 'E2', '[e2]' and an expert
    name called as a tool ('ela' or 'expert_ela') all resolve; order and duplicates cleaned."""
    by_id = {item.id.lower(): item for item in shown}
    found: dict[str, EvidenceItem] = {}
    unknown: list[str] = []
    for raw in cited:
        text = str(raw).strip()
        match = _ID.match(text)
        key = (match.group(1) if match else text).lower().removeprefix("expert_")
        item = by_id.get(key)
        if item is not None:
            found.setdefault(item.id, item)
        elif text and text not in unknown:
            unknown.append(text)
    return list(found.values()), unknown


def _stage2_skip_reason(policy: str, stage1: Stage1Result, report: Report) -> str | None:
    if policy == "never":
        return "stage 2 disabled in the configuration (pipeline.stage2 = never)"
    if policy == "always":
        return None
    llm_yes = stage1.probability is not None and stage1.probability >= 0.5
    if llm_yes or report.verdict.label != "real":
        return None
    return "neither the LLM nor the experts found the image suspicious"


async def _stage2(
    engine: MLLMEngine, report: Report, image: ImageInput
) -> tuple[Stage2Result, list[EvidenceItem], list[ToolCall]]:
    opts = engine.config.pipeline
    if not opts.tools:
        shown = evidence_items(report, opts.max_evidence)
        result = await engine.aanalyze(
            image, evidence=[e.text for e in shown], k=opts.stage2_k, seed=opts.seed
        )
        return result, shown, []
    # The experts come as tools; their answers are the pipeline's results, not a second run.
    shown = evidence_items(report, opts.max_evidence, experts=False)
    result, calls = await analyze_with_tools(
        engine, image, results=report.experts, evidence=[e.text for e in shown]
    )
    shown += [
        EvidenceItem(id=c.name, text=json.dumps(c.result), source="tool", expert=c.name)
        for c in calls
    ]
    return result, shown, calls


async def assess_with(engine: MLLMEngine, report: Report, image: ImageInput) -> LLMAssessment:
    """Both stages on an open engine; LLM failures are recorded in the result, never raised."""
    config = engine.config
    opts = config.pipeline
    stage1 = await engine.adetect(image, **opts.stage1_knobs())
    out = LLMAssessment(
        model=config.model, flavor=config.flavor,
        prompt_versions={"stage1": stage1.prompt_version}, stage1=stage1,
        stage2_skipped=_stage2_skip_reason(opts.stage2, stage1, report),
        verdict_agreement=verdict_agreement(report, stage1),
        agreement=compare(stage1, report.experts),
        usage=Usage() + stage1.usage,
    )  # fmt: skip
    if out.stage2_skipped is not None:
        return out
    stage2, shown, calls = await _stage2(engine, report, image)
    version = HYBRID_PROMPT_VERSION if opts.tools else stage2.prompt_version
    cited: list[EvidenceItem] = []
    unknown: list[str] = []
    if stage2.answer is not None:
        cited, unknown = resolve_citations(stage2.answer.cited_evidence, shown)
    return out.model_copy(update={
        "prompt_versions": {**out.prompt_versions, "stage2": version}, "stage2": stage2,
        "evidence_shown": shown, "cited_evidence": cited, "unknown_citations": unknown,
        "tool_calls": calls, "usage": out.usage + stage2.usage,
    })  # fmt: skip


async def aassess(
    report: Report, image: ImageInput, config: LLMConfig, **engine_kwargs: Any
) -> LLMAssessment:
    """Open an engine for `config` (k-shot pool from `config.pipeline.pool`) and run both
    stages. `engine_kwargs` go to MLLMEngine (transport, cache, audit)."""
    pool = None
    if (config.pipeline.k > 0 or config.pipeline.stage2_k > 0) and config.pipeline.pool:
        from .examples import ExamplePool

        pool = ExamplePool.load(config.pipeline.pool)
    async with MLLMEngine(config, pool=pool, **engine_kwargs) as engine:
        return await assess_with(engine, report, image)


def assess(
    report: Report, image: ImageInput, config: LLMConfig, **engine_kwargs: Any
) -> LLMAssessment:
    """Blocking `aassess`; from inside a running event loop it runs on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aassess(report, image, config, **engine_kwargs))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, aassess(report, image, config, **engine_kwargs)).result()
