"""`llm:<config file>` systems: stage 1 of the MLLM engine over a dataset, on its async client.

The protocol is the config's `pipeline:` block (prompt variant, k-shot, pool, scoring, n,
temperature, seed), exactly what `forenscope analyze --llm CFG` runs, with what a caller changes
(a preset such as `--protocol paper`, an ablation cell, a command-line option) applied through
`PipelineOptions.overridden`: one definition of the settings, validated once. Concurrency is the
engine's (its client bounds HTTP requests to `concurrency`); the response cache is the engine's
on-disk cache, shared with `forenscope llm` and between runs, so an interrupted or repeated run
does not pay twice. A refusal (no usable vote) is a value, never a label; token and cost totals
come from the client's usage counter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .align import Preprocess, prepare
from .datasets import Sample
from .journal import Journal
from .protocol import LLMOptions, Prediction, RunSettings
from .records import Explanation, SampleRecord
from .runner import Progress, base_record, error_text, fill, load_input, pending

if TYPE_CHECKING:
    from ..mllm.config import PipelineOptions
    from ..mllm.judge import JudgeSession


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


class LLMSystem:
    """`llm:<config file>`: stage 1 (and optionally stage 2) on the engine's async client.

    The protocol is the config's `pipeline:` block, under a named preset (`options.protocol`)
    and the caller's changes (`options.pipeline`), resolved once here."""

    name = "llm"
    produces_heatmap = False

    def __init__(self, config_path: str, options: LLMOptions) -> None:
        from ..mllm.config import load_config
        from ..mllm.protocols import resolve_pipeline

        self.config_path = config_path
        self.options = options
        self.config = load_config(config_path)
        self.pipeline, self.source = resolve_pipeline(
            self.config.pipeline, options.protocol, options.pipeline
        )
        self.judge = None
        if options.judge:
            from ..mllm.judge import PositionJudge

            if not options.stage2:
                raise ValueError("a judge scores stage-2 answers: it needs stage 2 (--stage2)")
            self.judge = PositionJudge.from_file(options.judge)

    def planned_scoring(self) -> str:
        from ..mllm.config import planned_scoring

        return planned_scoring(self.pipeline.scoring, self.config.caps)

    def identity(self) -> dict[str, Any]:
        """Endpoint, model and the protocol that runs: a resume under another model, endpoint,
        prompt set or knob is refused instead of mixing answers from two protocols."""
        from ..mllm.prompts import load_prompts

        cfg, pipe = self.config, self.pipeline
        prompts = load_prompts(pipe.prompts)
        return {
            "base_url": cfg.base_url,
            "model": cfg.model,
            "flavor": cfg.flavor,
            "capabilities": cfg.caps.model_dump(),
            "image_policy": cfg.image_policy.as_params(),
            "image_mode": cfg.image_mode,
            "extra_body": cfg.extra_body,
            "prompt_set": prompts.describe(),
            "prompt_sha256": prompts.stage1(pipe.variant).sha256,
            **pipe.stage1_knobs(),
            "pool": pipe.pool if pipe.k > 0 or pipe.stage2_k > 0 else None,
            "protocol": self.options.protocol,
            "stage2": self.options.stage2,
            "stage2_k": pipe.stage2_k if self.options.stage2 else None,
            # only when configured: runs without a judge keep the identity they always had
            **({"judge": self.judge.identity()} if self.judge else {}),
        }

    def describe(self) -> dict[str, Any]:
        """The system block of the run record: endpoint, prompt, and the protocol that ran, with
        the scoring rule in words and where each knob came from (config, preset, override)."""
        from ..mllm.config import SCORING_RULES
        from ..mllm.prompts import load_prompts
        from ..mllm.protocols import get_protocol

        cfg, pipe = self.config, self.pipeline
        prompts = load_prompts(pipe.prompts)
        prompt = prompts.stage1(pipe.variant)
        planned = self.planned_scoring()
        protocol = self.options.protocol
        return {
            "system": "llm",
            "config_file": str(Path(self.config_path)),
            "base_url": cfg.base_url,
            "model": cfg.model,
            "flavor": cfg.flavor,
            "prompt_version": prompt.version,
            "prompt_sha256": prompt.sha256,
            "prompt_set": prompts.describe(),
            "image_policy": cfg.image_policy.as_params(),
            **pipe.stage1_knobs(),
            "pool": pipe.pool if pipe.k > 0 else None,
            "examples_sent": "aligned like the queries (the run's preprocess)" if pipe.k else None,
            "stage2": self.options.stage2,
            "stage2_k": pipe.stage2_k if self.options.stage2 else None,
            "scoring_planned": planned,
            "scoring_rule": SCORING_RULES[planned],
            "n_applies": planned == "votes",
            "knob_source": self.source,
            "protocol": get_protocol(protocol).describe() if protocol else None,
            "judge": self.judge.identity() if self.judge else None,
        }

    def score(
        self, samples: Sequence[Sample], pre: Preprocess, journal: Journal, run: RunSettings
    ) -> dict[str, Any] | None:
        if run.engine != "local":
            raise ValueError(f"--engine {run.engine} runs image systems; llm: has its own engine")
        return asyncio.run(self.ascore(samples, pre, journal, progress=run.progress))

    def finalize(self, records: list[SampleRecord]) -> None:
        return None

    def example_pool(self) -> Any:
        if self.pipeline.k <= 0 and not (self.options.stage2 and self.pipeline.stage2_k > 0):
            return None
        from ..mllm.examples import ExamplePool

        return ExamplePool.load(str(self.pipeline.pool))

    async def ascore(
        self,
        samples: Sequence[Sample],
        pre: Preprocess,
        journal: Journal,
        *,
        progress: Progress | None = None,
        **engine_kwargs: Any,
    ) -> dict[str, Any]:
        """Score the samples not yet journaled; returns this session's usage totals."""
        from ..mllm.runner import MLLMEngine

        pipe = self.pipeline
        tick = progress or (lambda n: None)
        todo = pending(samples, journal)
        pool = self.example_pool() if todo else None
        # k-shot examples go through the queries' alignment: the same size, format and
        # perturbations, so no difference between example and query tells a label apart.
        aligned = partial(aligned_example, pre)
        judging = self.judge.open() if self.judge and todo else contextlib.nullcontext(None)
        async with (
            MLLMEngine(self.config, pool=pool, prepare_example=aligned, **engine_kwargs) as engine,
            judging as judge,
        ):
            gate = asyncio.Semaphore(2 * self.config.concurrency)  # bounded images in flight

            async def one(sample: Sample) -> None:
                async with gate:
                    rec = base_record(sample)
                    loaded = await asyncio.to_thread(load_input, sample, pre, rec)
                    if loaded is not None:
                        try:
                            res = await engine.adetect(
                                loaded[0],
                                **pipe.stage1_knobs(),
                                # The model sees an aligned re-encoding: name the original file
                                # so the query is never drawn as its own example (a label leak).
                                exclude_sha256=[str(rec.sha256_seen)],
                                exclude_paths=[sample.file],
                            )
                            fill(rec, stage1_prediction(res), None, False)
                            if self.options.stage2 and sample.is_fake:
                                mask = (
                                    loaded[1] if loaded[1] is not None and loaded[1].any() else None
                                )
                                rec.explanation = await _explain(
                                    engine,
                                    loaded[0],
                                    mask,
                                    pipe,
                                    sample,
                                    str(rec.sha256_seen),
                                    judge,
                                )
                        except Exception as exc:  # bad input or config: a value for this sample
                            rec.error = error_text(exc)
                    journal.add(rec)
                    tick(1)

            await asyncio.gather(*(one(s) for s in todo))
            usage = engine.usage.model_dump()
            if judge is not None:  # the judge's tokens, apart from the system's
                usage["judge"] = judge.client.usage.model_dump()
            return usage


def aligned_example(pre: Preprocess, path: Path) -> bytes:
    """A k-shot example's bytes as eval's alignment makes a query's (seeded by its path)."""
    return prepare(path.read_bytes(), pre, f"example:{path}")[0]


async def _explain(
    engine: Any,
    data: bytes,
    mask: Any,
    pipe: PipelineOptions,
    sample: Sample,
    sha: str,
    judge: JudgeSession | None = None,
) -> Explanation:
    """Stage 2 on one forged image (after `pipe.stage2_k` forged examples, never itself):
    method and scope as answered, positions scored against its mask (aligned geometry); with a
    judge, its verdict on the object-relative position (the image it sees is `data`, outlined)."""
    from .explanations import explanation_record

    res = await engine.aanalyze(
        data, k=pipe.stage2_k, seed=pipe.seed, exclude_sha256=[sha], exclude_paths=[sample.file]
    )
    answer = res.answer
    metrics = explanation_record(answer.model_dump(), mask) if answer is not None else {}
    out = Explanation(status=res.status, usage=res.usage.model_dump(), **metrics)
    if answer is not None and judge is not None and mask is not None:
        verdict = await judge.ajudge(data, mask, answer.location.relative)
        out.judged = True
        out.object_position = verdict.object_position
        out.judge_refusal, out.judge_error = verdict.refusal, verdict.error
        out.judge_answer = verdict.answer
    return out
