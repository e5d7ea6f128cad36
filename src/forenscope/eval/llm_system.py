"""`llm:<config file>` systems: stage 1 of the MLLM engine over a dataset, on its async client.

Concurrency is the engine's (its client bounds HTTP requests to `concurrency`); the response
cache is the engine's on-disk cache, shared with `forenscope llm` and between runs, so an
interrupted or repeated run does not pay twice. A refusal (no usable vote) is a value, never a
label; token and cost totals come from the client's usage counter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .align import Preprocess
from .datasets import Sample
from .journal import Journal
from .runner import Progress, base_record, fill, load_input, sample_key
from .systems import Prediction


@dataclass(frozen=True)
class LLMSettings:
    """One stage-1 configuration (an ablation cell)."""

    variant: int = 4
    k: int = 0
    n: int = 5
    seed: int = 0
    scoring: str = "auto"
    temperature: float = 1.0
    stage2: bool = False  # also ask stage 2 on forged images with a mask; score the explanation

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stage1_prediction(res: Any) -> Prediction:
    """A Stage1Result as a Prediction: probability, refusal or error, usage and vote counts."""
    extra = {
        "votes": res.votes,
        "yes": res.yes,
        "no": res.no,
        "refusals": res.refusals,
        "failed_samples": res.failed_samples,
        "method": res.method,
        "prompt_version": res.prompt_version,
        "model": res.model,
        "k_shot": res.k_shot,
        "example_ids": res.example_ids,
    }
    pred = Prediction(usage=res.usage.model_dump(), extra=extra)
    if res.status == "ok" and res.probability is not None:
        pred.fake_probability = float(res.probability)
    elif res.status == "refused":
        pred.refusal = f"refused ({res.refusals} of {res.refusals + res.votes} answers)"
    else:
        err = res.error
        pred.error = f"{err.type}: {err.message}" if err is not None else "no answer"
    return pred


def describe_llm(config_path: str, settings: LLMSettings) -> dict[str, Any]:
    from ..mllm.config import load_config
    from ..mllm.prompts import stage1_prompt

    cfg = load_config(config_path)
    prompt = stage1_prompt(settings.variant)
    return {
        "system": "llm",
        "config_file": str(Path(config_path)),
        "base_url": cfg.base_url,
        "model": cfg.model,
        "flavor": cfg.flavor,
        "prompt_version": prompt.version,
        "prompt_sha256": prompt.sha256,
        "image_policy": cfg.image_policy.as_params(),
        **settings.as_dict(),
    }


async def arun_llm(
    config_path: str,
    samples: Sequence[Sample],
    pre: Preprocess,
    journal: Journal,
    settings: LLMSettings,
    *,
    pool: Any = None,
    progress: Progress | None = None,
    **engine_kwargs: Any,
) -> dict[str, Any]:
    """Score the samples not yet journaled; returns this session's usage totals."""
    from ..mllm.config import load_config
    from ..mllm.runner import MLLMEngine

    cfg = load_config(config_path)
    tick = progress or (lambda n: None)
    todo = [s for s in samples if sample_key(s) not in journal.records]
    async with MLLMEngine(cfg, pool=pool, **engine_kwargs) as engine:
        gate = asyncio.Semaphore(2 * cfg.concurrency)  # bounded images in flight

        async def one(sample: Sample) -> None:
            async with gate:
                rec = base_record(sample)
                loaded = await asyncio.to_thread(load_input, sample, pre, rec)
                if loaded is not None:
                    try:
                        res = await engine.adetect(
                            loaded[0],
                            variant=settings.variant,
                            k=settings.k,
                            seed=settings.seed,
                            scoring=settings.scoring,  # type: ignore[arg-type]
                            n=settings.n,
                            temperature=settings.temperature,
                        )
                        fill(rec, stage1_prediction(res), None, False)
                        if settings.stage2 and loaded[1] is not None and loaded[1].any():
                            rec["explanation"] = await _explain(engine, loaded[0], loaded[1])
                    except Exception as exc:  # bad input or config: a value for this sample
                        rec["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                journal.add(rec)
                tick(1)

        await asyncio.gather(*(one(s) for s in todo))
        return engine.usage.model_dump()


async def _explain(engine: Any, data: bytes, mask: Any) -> dict[str, Any]:
    """Stage 2 on one forged image, scored against its mask (aligned geometry)."""
    from .explanations import explanation_record

    res = await engine.aanalyse(data)
    out: dict[str, Any] = {"status": res.status, "usage": res.usage.model_dump()}
    if res.answer is not None:
        out.update(explanation_record(res.answer.model_dump(), mask))
    return out


def run_llm(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(arun_llm(*args, **kwargs))
