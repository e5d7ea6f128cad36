"""`llm:<config file>` systems: stage 1 of the MLLM engine over a dataset, on its async client.

The protocol is the config's `pipeline:` block (prompt variant, k-shot, pool, scoring, n,
temperature, seed), exactly what `forenscope analyze --llm CFG` runs; `LLMSettings` only holds
what a caller overrides (an ablation cell, a command-line option). Concurrency is the engine's
(its client bounds HTTP requests to `concurrency`); the response cache is the engine's on-disk
cache, shared with `forenscope llm` and between runs, so an interrupted or repeated run does
not pay twice. A refusal (no usable vote) is a value, never a label; token and cost totals come
from the client's usage counter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .align import Preprocess
from .datasets import Sample
from .journal import Journal
from .runner import Progress, base_record, fill, load_input, sample_key
from .systems import Prediction

if TYPE_CHECKING:
    from ..mllm.config import LLMConfig, PipelineOptions

_KNOBS = ("variant", "k", "n", "seed", "scoring", "temperature")


@dataclass(frozen=True)
class LLMSettings:
    """Overrides of the config's `pipeline:` block for one evaluation (an ablation cell).

    None means "the config's value". The positional order (variant, k, n, seed, scoring,
    temperature) is the eval CLI's.
    """

    variant: int | None = None
    k: int | None = None
    n: int | None = None
    seed: int | None = None
    scoring: str | None = None
    temperature: float | None = None
    stage2: bool = False  # also ask stage 2 on forged images with a mask; score the explanation

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def resolve(self, options: PipelineOptions) -> Stage1Protocol:
        """The protocol that runs: each knob from this object when set, else the config's."""
        values = {
            name: getattr(options, name) if getattr(self, name) is None else getattr(self, name)
            for name in _KNOBS
        }
        source = {name: "config" if getattr(self, name) is None else "override" for name in _KNOBS}
        return Stage1Protocol(**values, pool=options.pool, source=source)


@dataclass(frozen=True)
class Stage1Protocol:
    """The stage-1 settings of a run, every knob resolved, and where each came from."""

    variant: int
    k: int
    n: int
    seed: int
    scoring: str
    temperature: float
    pool: str | None  # the config's pool (eval's --pool, when given, takes precedence)
    source: dict[str, str]

    def knobs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _KNOBS}

    def sha(self) -> str:
        """Identifies the protocol in each journal record, so a resumed run cannot mix two."""
        blob = json.dumps(self.knobs(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def stage1_prediction(res: Any) -> Prediction:
    """A Stage1Result as a Prediction: probability, refusal or error, usage and vote counts."""
    extra = {
        "votes": res.votes,
        "yes": res.yes,
        "no": res.no,
        "refusals": res.refusals,
        "non_votes": _non_votes(res),
        "answers_requested": res.answers_requested,
        "answers_received": res.answers_received,
        "failed_samples": res.failed_samples,
        "method": res.method,
        "scoring": res.scoring,
        "prompt_version": res.prompt_version,
        "model": res.model,
        "k_shot": res.k_shot,
        "example_ids": res.example_ids,
        "notes": list(res.notes),
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


def _non_votes(res: Any) -> dict[str, int]:
    """Refused and undetermined answers by reason (policy, empty, undetermined, ...)."""
    out: dict[str, int] = {}
    for s in res.samples:
        if s.label == "refusal":
            key = s.refusal_reason or "unspecified"
            out[key] = out.get(key, 0) + 1
    return out


def describe_llm(config_path: str, settings: LLMSettings) -> dict[str, Any]:
    """The system block of the run record: endpoint, prompt, and the protocol that ran, with the
    scoring rule in words and where each knob came from (the config or an override)."""
    from ..mllm.config import SCORING_RULES, load_config, planned_scoring
    from ..mllm.prompts import load_prompts

    cfg = load_config(config_path)
    proto = settings.resolve(cfg.pipeline)
    prompts = load_prompts(cfg.pipeline.prompts)
    prompt = prompts.stage1(proto.variant)
    planned = planned_scoring(proto.scoring, cfg.caps)  # type: ignore[arg-type]
    return {
        "system": "llm",
        "config_file": str(Path(config_path)),
        "base_url": cfg.base_url,
        "model": cfg.model,
        "flavor": cfg.flavor,
        "prompt_version": prompt.version,
        "prompt_sha256": prompt.sha256,
        "prompt_set": prompts.describe(),
        "image_policy": cfg.image_policy.as_params(),
        **proto.knobs(),
        "stage2": settings.stage2,
        "scoring_planned": planned,
        "scoring_rule": SCORING_RULES[planned],
        "n_applies": planned == "votes",
        "knob_source": proto.source,
        "protocol_sha": proto.sha(),
    }


def _check_resume(journal: Journal, samples: Sequence[Sample], sha: str) -> None:
    stale = [
        key
        for s in samples
        if (key := sample_key(s)) in journal.records
        and (journal.records[key].get("extra") or {}).get("protocol_sha", sha) != sha
    ]
    if stale:
        raise ValueError(
            f"{len(stale)} journaled samples were scored under another LLM protocol (the "
            "config's pipeline block changed); use --restart or another --out"
        )


def _pool_for(cfg: LLMConfig, proto: Stage1Protocol, pool: Any) -> Any:
    if pool is not None or proto.k <= 0:
        return pool
    if not proto.pool:
        from ..errors import ConfigError

        raise ConfigError(f"k={proto.k} needs an example pool: pipeline.pool or --pool")
    from ..mllm.examples import ExamplePool

    return ExamplePool.load(proto.pool)


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
    proto = settings.resolve(cfg.pipeline)
    _check_resume(journal, samples, proto.sha())
    pool = _pool_for(cfg, proto, pool)
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
                            variant=proto.variant,
                            k=proto.k,
                            seed=proto.seed,
                            scoring=proto.scoring,  # type: ignore[arg-type]
                            n=proto.n,
                            temperature=proto.temperature,
                            # The model sees an aligned re-encoding: name the original file so
                            # the query is never drawn as its own example (a label leak).
                            exclude_sha256=[rec["sha256_seen"]],
                            exclude_paths=[sample.file],
                        )
                        fill(rec, stage1_prediction(res), None, False)
                        rec["extra"]["protocol_sha"] = proto.sha()
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


def protocol_of(config_path: str, settings: LLMSettings) -> tuple[Stage1Protocol, str]:
    """(the resolved protocol, the scoring tried first) for a config and its overrides."""
    from ..mllm.config import load_config, planned_scoring

    cfg = load_config(config_path)
    proto = settings.resolve(cfg.pipeline)
    return proto, planned_scoring(proto.scoring, cfg.caps)  # type: ignore[arg-type]
