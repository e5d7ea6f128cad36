"""The two stages: detect (yes/no -> probability) and analyse (structured JSON answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError
from ..types import ErrorInfo
from ..types.llm import ImageRun, Stage1Answer, Stage1Result, Stage2Result, Usage
from .client import AsyncLLMClient, ChatResponse
from .collage import collage_messages
from .config import LLMConfig, Scoring, planned_scoring
from .errors import LLMError
from .examples import Example, ExamplePool
from .image import EncodedImage, ImageLike, encode_image
from .parsing import parse_analysis, parse_yes_no, schema_problem
from .prompts import PromptSet, PromptTemplate, load_prompts, stage2_response_format
from .request import answer_texts, build_messages, build_request
from .scoring import top_tokens, vote_probability, yes_probability

T = TypeVar("T")


def _vote(text: str | None) -> Stage1Answer:
    label, reason = parse_yes_no(text)
    return Stage1Answer(text=text or "", label=label, refusal_reason=reason)


def _shown_answer(example: Example, stage2: bool) -> str:
    return example.stage2_answer() if stage2 else example.answer


def _error(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(type=type(exc).__name__, message=str(exc)[:500])


@dataclass
class _Tally:
    """What stage-1 requests brought back besides their texts, counted while they arrive; the
    Stage1Result is built from it once every answer is in."""

    usage: Usage
    failed: int = 0
    error: ErrorInfo | None = None


class MLLMEngine:
    """Runs the stages against one configured endpoint. Use inside `async with`."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        pool: ExamplePool | None = None,
        client: AsyncLLMClient | None = None,
        prompts: PromptSet | None = None,
        prepare_example: Callable[[Path], ImageLike] | None = None,
        **client_kwargs: Any,
    ) -> None:
        """`prepare_example(path)` gives the image sent for a k-shot example: an evaluation
        passes its own alignment, so examples reach the model as its queries do."""
        self.config = config
        self.pool = pool
        self.prepare_example = prepare_example
        self.prompts = prompts or load_prompts(config.pipeline.prompts)
        self._own_client = client is None
        self.client = client or AsyncLLMClient(config, **client_kwargs)

    async def __aenter__(self) -> MLLMEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client:
            await self.client.aclose()

    # -- stage 1 ------------------------------------------------------------------------------
    def _examples(
        self,
        k: int,
        seed: int,
        query: EncodedImage,
        exclude_sha256: Iterable[str],
        exclude_paths: Iterable[str | Path],
        *,
        stage2: bool = False,
    ) -> list[tuple[EncodedImage, str, str]]:
        """(image as sent, the answer shown after it, id) for k pool examples, never the query:
        labelled real/fake ones for stage 1, forged ones with their truth for stage 2."""
        if k <= 0:
            return []
        if self.pool is None:
            from ..errors import ConfigError

            raise ConfigError("k-shot examples requested but no example pool was given")
        shas = {query.sha256, *exclude_sha256}
        draw = self.pool.draw_stage2 if stage2 else self.pool.draw
        drawn = draw(k, seed, exclude_sha256=shas, exclude_paths=exclude_paths)
        policy = self.config.image_policy
        prepare = self.prepare_example or (lambda path: path)
        return [
            (encode_image(prepare(ex.path), policy), _shown_answer(ex, stage2), ex.id)
            for ex in drawn
        ]

    def _messages(
        self,
        template: PromptTemplate,
        query: EncodedImage,
        examples: Sequence[tuple[EncodedImage, str, str]],
        question: str | None = None,
    ) -> list[dict[str, Any]]:
        """The chat turns: one image per example turn, or (image_mode collage) one collage."""
        pairs = [(image, answer) for image, answer, _ in examples]
        if self.config.image_mode == "collage" and pairs:
            return collage_messages(template, query, pairs, self.config.image_policy)[0]
        return build_messages(template, query, pairs, question)

    def _mode_param(self, examples: Sequence[object]) -> dict[str, Any]:
        """The image mode in the cache key, where it changes the request (k > 0)."""
        return {"image_mode": "collage"} if examples and self.config.image_mode == "collage" else {}

    async def adetect(
        self,
        image: ImageLike,
        *,
        variant: int | None = None,
        k: int | None = None,
        seed: int | None = None,
        scoring: Scoring | None = None,
        n: int | None = None,
        temperature: float | None = None,
        exclude_sha256: Iterable[str] = (),
        exclude_paths: Iterable[str | Path] = (),
    ) -> Stage1Result:
        """Stage 1. Options left as None take the config's `pipeline` values, so every entry
        point runs the same protocol. `exclude_*` name the query's other identities (its
        original file) so it is never drawn as its own k-shot example. LLM failures come back
        as status='error' (never raised) so batches lose nothing; bad input and bad
        configuration raise."""
        opts = self.config.pipeline
        variant = opts.variant if variant is None else variant
        k = opts.k if k is None else k
        seed = opts.seed if seed is None else seed
        scoring = opts.scoring if scoring is None else scoring
        n = opts.n if n is None else n
        temperature = opts.temperature if temperature is None else temperature
        if isinstance(image, (str, Path)):
            exclude_paths = [image, *exclude_paths]
        template = self.prompts.stage1(variant)
        query = encode_image(image, self.config.image_policy)
        examples = self._examples(k, seed, query, exclude_sha256, exclude_paths)
        messages = self._messages(template, query, examples)
        params: dict[str, Any] = {
            "prompt_sha": template.sha256,
            "image": self.config.image_policy.as_params(),
            "examples": [e.sha256 for e, _, _ in examples],
            "extra": self.config.extra_body,
            **self._mode_param(examples),
        }
        base = Stage1Result(
            status="ok",
            method="votes",
            scoring=scoring,
            prompt_version=template.version,
            model=self.config.model,
            k_shot=k,
            example_ids=[i for _, _, i in examples],
        )
        try:
            if planned_scoring(scoring, self.config.caps) == "logprobs":
                base, final = await self._detect_logprobs(base, messages, params, query.sha256)
                if final:
                    return base
            return await self._detect_votes(base, messages, params, query.sha256, n, temperature)
        except LLMError as exc:
            return base.model_copy(update={"status": "error", "error": _error(exc)})

    async def _call(
        self, body: dict[str, Any], version: str, sha: str, params: dict[str, Any]
    ) -> ChatResponse:
        key = {"prompt_version": version, "image_sha256": sha, "params": params}
        return await self.client.complete({**body, **self.config.extra_body}, key)

    async def _detect_logprobs(
        self, res: Stage1Result, messages: list[dict[str, Any]], params: dict[str, Any], sha: str
    ) -> tuple[Stage1Result, bool]:
        """(the result, True), or (`res` with this call's usage and a note, False) when the
        endpoint gave no usable log-probs and the votes must decide."""
        top = min(self.config.caps.max_top_logprobs, 10)
        body = build_request(self.config.model, messages, max_tokens=4, top_logprobs=top)
        params = {**params, "mode": "logprobs", "top": top}
        resp = await self._call(body, res.prompt_version, sha, params)
        text = (answer_texts(resp.data) or [None])[0]
        label, reason = parse_yes_no(text)
        p = yes_probability(top_tokens(resp.data) or [])
        asked = {"usage": res.usage + resp.usage, "answers_requested": 1, "answers_received": 1}
        if label == "refusal":
            sample = Stage1Answer(text=text or "", label=label, refusal_reason=reason)
            return res.model_copy(update={
                **asked, "raw": [*res.raw, text or ""], "samples": [*res.samples, sample],
                "method": "logprobs", "status": "refused", "refusals": 1,
            }), True  # fmt: skip
        if p is None:
            note = "endpoint returned no usable logprobs; fell back to votes"
            return res.model_copy(update={**asked, "notes": [*res.notes, note]}), False
        sample = Stage1Answer(text=text or "", label=label, yes_probability=p)
        return res.model_copy(update={
            **asked, "raw": [*res.raw, text or ""], "samples": [*res.samples, sample],
            "method": "logprobs", "probability": p, "votes": 1,
            "yes": int(label == "yes"), "no": int(label == "no"),
        }), True  # fmt: skip

    async def _texts(
        self, tally: _Tally, calls: Sequence[Awaitable[ChatResponse]]
    ) -> list[str | None]:
        """The answers of `calls`; a failed request is counted (and its error kept), never
        raised, so the other samples still vote."""
        texts: list[str | None] = []
        for out in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(out, LLMError):
                tally.failed += 1
                tally.error = tally.error or _error(out)
            elif isinstance(out, BaseException):
                raise out
            else:
                tally.usage += out.usage
                texts.extend(answer_texts(out.data))
        return texts

    def _one_sample(
        self,
        res: Stage1Result,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        sha: str,
        temperature: float,
        i: int,
    ) -> Awaitable[ChatResponse]:
        # A distinct seed keeps each sample reproducible (and distinct where seeds are honoured).
        body = build_request(self.config.model, messages, temperature=temperature, seed=i)
        return self._call(body, res.prompt_version, sha, {**params, "sample": i})

    async def _detect_votes(
        self,
        res: Stage1Result,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        sha: str,
        n: int,
        temperature: float,
    ) -> Stage1Result:
        params = {**params, "mode": "votes", "n": n, "t": temperature}
        tally = _Tally(usage=res.usage, failed=res.failed_samples, error=res.error)
        notes = list(res.notes)
        if self.config.caps.n and n > 1:
            body = build_request(self.config.model, messages, temperature=temperature, n=n)
            texts = await self._texts(tally, [self._call(body, res.prompt_version, sha, params)])
            if len(texts) > n:
                notes.append(f"the endpoint returned {len(texts)} answers for n={n}; "
                             f"the first {n} were used")  # fmt: skip
                texts = texts[:n]
            if 0 < len(texts) < n:  # the request worked, but the server ignores `n`
                notes.append(
                    f"asked for n={n} answers in one request, got {len(texts)}: the endpoint "
                    f"ignores `n`, so the other {n - len(texts)} were asked one at a time "
                    "(set capabilities.n: false to skip the n request)"
                )
                more = [
                    self._one_sample(res, messages, params, sha, temperature, i)
                    for i in range(len(texts), n)
                ]
                texts += await self._texts(tally, more)
        else:
            calls = [self._one_sample(res, messages, params, sha, temperature, i) for i in range(n)]
            texts = await self._texts(tally, calls)
        samples = [*res.samples, *(_vote(text) for text in texts)]
        p, yes, no, refusals = vote_probability(s.label for s in samples)
        if texts and len(texts) < n:
            notes.append(
                f"only {len(texts)} of the {n} answers asked for arrived "
                f"({tally.failed} request(s) failed): P rests on {yes + no} vote(s)"
            )
        return res.model_copy(update={
            "status": "error" if not texts else "refused" if p is None else "ok",
            "probability": p, "method": "votes", "answers_requested": n,
            "answers_received": len(texts), "votes": yes + no, "yes": yes, "no": no,
            "refusals": refusals, "failed_samples": tally.failed, "samples": samples,
            "raw": [*res.raw, *(text or "" for text in texts)], "usage": tally.usage,
            "notes": notes, "error": tally.error,
        })  # fmt: skip

    # -- stage 2 ------------------------------------------------------------------------------
    async def aanalyze(
        self,
        image: ImageLike,
        *,
        evidence: Sequence[str] = (),
        max_tokens: int = 800,
        k: int = 0,
        seed: int = 0,
        exclude_sha256: Iterable[str] = (),
        exclude_paths: Iterable[str | Path] = (),
    ) -> Stage2Result:
        """Stage 2: the structured analysis, optionally grounded on expert evidence texts, after
        `k` forged pool examples with their true method, scope and place (`pool.draw_stage2`).
        Examples are asked the stage-2 question without the query's evidence lines."""
        template = self.prompts.stage2(evidence)
        query = encode_image(image, self.config.image_policy)
        examples = self._examples(k, seed, query, exclude_sha256, exclude_paths, stage2=True)
        rf = stage2_response_format() if self.config.caps.json_schema else None
        question = self.prompts.stage2(()).user if examples else None
        body = build_request(
            self.config.model,
            self._messages(template, query, examples, question),
            max_tokens=max_tokens,
            response_format=rf,
        )
        res = Stage2Result(
            status="error",
            prompt_version=template.version,
            model=self.config.model,
            evidence_shown=list(evidence),
        )
        params = {
            "prompt_sha": template.sha256,
            "image": self.config.image_policy.as_params(),
            "schema": rf is not None,
            "max_tokens": max_tokens,
        }
        if examples:  # absent at k=0, so earlier cached answers keep their keys
            params["examples"] = [e.sha256 for e, _, _ in examples]
            params["example_answers"] = [a for _, a, _ in examples]
            params.update(self._mode_param(examples))
        try:
            resp = await self._call(body, template.version, query.sha256, params)
        except LLMError as exc:
            return res.model_copy(update={"error": _error(exc)})
        text = (answer_texts(resp.data) or [None])[0]
        answer, obj, status = parse_analysis(text)
        problem = None
        if status == "unparseable":
            finish = (resp.data.get("choices") or [{}])[0].get("finish_reason")
            problem = schema_problem(obj) if obj is not None else "no complete JSON object"
            if finish == "length":
                problem += " (answer truncated: finish_reason=length)"
        elif status == "refused":
            problem = "the model declined or returned nothing"
        return res.model_copy(update={
            "status": status, "answer": answer, "raw": text or "", "parsed": obj,
            "problem": problem, "usage": resp.usage,
        })  # fmt: skip

    # -- batches ------------------------------------------------------------------------------
    async def arun(
        self,
        paths: Sequence[str | Path],
        *,
        stage2: bool = True,
        stage2_min_probability: float | None = 0.5,
        evidence: Mapping[str, Sequence[str]] | None = None,
        **detect_kwargs: Any,
    ) -> list[ImageRun]:
        """Stage 1 then (for images at or above the threshold; None = all) stage 2."""

        async def one(path: str | Path) -> ImageRun:
            first: Stage1Result | None = None
            second: Stage2Result | None = None
            try:
                first = await self.adetect(path, **detect_kwargs)
                p = first.probability
                floor = stage2_min_probability
                wanted = floor is None or (p is not None and p >= floor)
                if stage2 and wanted:
                    ev = (evidence or {}).get(str(path), ())
                    second = await self.aanalyze(path, evidence=ev)
            except (OSError, ValueError, InputError) as exc:  # unreadable / undecodable input
                return ImageRun(path=str(path), stage1=first, stage2=second, error=_error(exc))
            return ImageRun(path=str(path), stage1=first, stage2=second)

        return list(await asyncio.gather(*(one(p) for p in paths)))

    @property
    def usage(self) -> Usage:
        return self.client.usage


def _run_sync(config: LLMConfig, job: Callable[[MLLMEngine], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with MLLMEngine(config, **kw) as engine:
            return await job(engine)

    return asyncio.run(main())


def detect(image: ImageLike, config: LLMConfig, **kwargs: Any) -> Stage1Result:
    """Blocking stage 1 for scripts; engine options (pool, transport, cache) go in kwargs."""
    eng = {
        k: kwargs.pop(k) for k in ("pool", "prompts", "transport", "cache", "audit") if k in kwargs
    }
    return _run_sync(config, lambda e: e.adetect(image, **kwargs), **eng)


def analyze(
    image: ImageLike, config: LLMConfig, evidence: Sequence[str] = (), **kwargs: Any
) -> Stage2Result:
    """Blocking stage 2 for scripts."""
    eng = {k: kwargs.pop(k) for k in ("prompts", "transport", "cache", "audit") if k in kwargs}
    return _run_sync(config, lambda e: e.aanalyze(image, evidence=evidence, **kwargs), **eng)
