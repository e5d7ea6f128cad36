"""Async OpenAI-compatible chat client on httpx: retries, concurrency bound, cache, audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..types.llm import Usage
from .audit import AuditLog, redact_text
from .cache import ResponseCache, cache_key
from .config import LLMConfig
from .errors import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMResponseError,
    LLMTimeoutError,
)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class ChatResponse:
    data: dict[str, Any]
    cached: bool
    usage: Usage
    attempts: int
    elapsed_s: float


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(
    attempt: int, config: LLMConfig, retry_after: float | None, rng: random.Random
) -> float:
    """Exponential backoff with jitter (half fixed, half random); Retry-After is a floor."""
    base = float(min(config.backoff_max_s, config.backoff_base_s * (2**attempt)))
    delay = base / 2 + rng.uniform(0, base / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.retry_after_max_s))
    return delay


def usage_of(data: dict[str, Any], config: LLMConfig) -> Usage:
    raw = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(raw, dict)
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    cost = None
    if config.price_prompt_per_1m is not None and config.price_completion_per_1m is not None:
        cost = prompt * config.price_prompt_per_1m + completion * config.price_completion_per_1m
        cost /= 1e6
    return Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1, cost_usd=cost)


class AsyncLLMClient:
    """One client per event loop; use as `async with AsyncLLMClient(cfg) as client:`."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        cache: ResponseCache | None = None,
        audit: AuditLog | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self._key = config.api_key()
        self.cache = cache if cache is not None else (ResponseCache() if config.cache else None)
        if audit is None and config.audit_log:
            audit = AuditLog(config.audit_log, secrets=[self._key])
        self.audit = audit
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._sem = asyncio.Semaphore(config.concurrency)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._http = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=config.concurrency),
        )
        self.usage = Usage()

    async def __aenter__(self) -> AsyncLLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _redact(self, text: str) -> str:
        return redact_text(text, [self._key])

    def _audit(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.write(
                {"endpoint": self.config.endpoint, "model": self.config.model, **record}
            )

    async def complete(
        self, body: dict[str, Any], key_parts: dict[str, Any] | None = None
    ) -> ChatResponse:
        """POST a chat completion. `key_parts` = {prompt_version, image_sha256, params} enables
        the cache; None bypasses it (e.g. chat turns)."""
        key = None
        if self.cache is not None and key_parts is not None:
            key = cache_key(self.config.endpoint, self.config.model, **key_parts)
            hit = self.cache.get(key)
            if hit is not None:
                usage = Usage(cached_calls=1)
                self.usage += usage
                self._audit({"cache_hit": True, "cache_key": key})
                return ChatResponse(hit, True, usage, 0, 0.0)
        if self.config.token_limit_field != "max_tokens" and "max_tokens" in body:
            body = dict(body)
            body[self.config.token_limit_field] = body.pop("max_tokens")
        start = time.perf_counter()
        data, attempts = await self._post_with_retries(body)
        usage = usage_of(data, self.config)
        self.usage += usage
        if key is not None and self.cache is not None:
            self.cache.put(key, data)
        return ChatResponse(data, False, usage, attempts, time.perf_counter() - start)

    async def _post_with_retries(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        last: LLMError | None = None
        for attempt in range(self.config.max_retries + 1):
            data, err, retry_after = await self._post_once(body, attempt)
            if data is not None:
                return data, attempt + 1
            assert err is not None
            last = err
            if isinstance(err, LLMHTTPError) and err.status not in RETRY_STATUSES:
                raise err
            if attempt < self.config.max_retries:
                await self._sleep(backoff_delay(attempt, self.config, retry_after, self._rng))
        assert last is not None
        raise last

    async def _post_once(
        self, body: dict[str, Any], attempt: int
    ) -> tuple[dict[str, Any] | None, LLMError | None, float | None]:
        t0 = time.perf_counter()
        status: int | None = None
        try:
            async with self._sem:
                resp = await self._http.post(self.config.endpoint, json=body)
            status = resp.status_code
        except httpx.TimeoutException as exc:
            err: LLMError = LLMTimeoutError(self._redact(f"timeout: {type(exc).__name__}"))
            self._log_attempt(body, attempt, t0, None, None, err)
            return None, err, None
        except httpx.TransportError as exc:
            err = LLMConnectionError(self._redact(f"{type(exc).__name__}: {exc}"))
            self._log_attempt(body, attempt, t0, None, None, err)
            return None, err, None
        text = resp.text
        if status != 200:
            err = LLMHTTPError(status, self._redact(text[:300]))
            self._log_attempt(body, attempt, t0, status, text[:2000], err)
            return None, err, parse_retry_after(resp.headers.get("retry-after"))
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            err = LLMResponseError(self._redact(f"not a chat completion: {text[:200]!r}"))
            self._log_attempt(body, attempt, t0, status, text[:2000], err)
            return None, err, None
        self._log_attempt(body, attempt, t0, status, data, None)
        return data, None, None

    def _log_attempt(
        self,
        body: dict[str, Any],
        attempt: int,
        t0: float,
        status: int | None,
        response: Any,
        err: LLMError | None,
    ) -> None:
        self._audit(
            {
                "cache_hit": False,
                "attempt": attempt,
                "status": status,
                "elapsed_s": round(time.perf_counter() - t0, 4),
                "request": body,
                "response": response,
                "error": None if err is None else f"{type(err).__name__}: {err}",
            }
        )
