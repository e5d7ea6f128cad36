"""Request guards: bearer tokens, per-client token buckets, body limits, magic-byte sniffing."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ID_PATTERN = r"^[0-9a-f]{32}$"
ID_RE = re.compile(ID_PATTERN)
NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"

# Leading bytes of the image formats load_image accepts. The file name and the client's
# Content-Type are ignored: only these decide whether bytes reach the decoder.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"BM", 0, "image/bmp"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "image/jp2"),
    (b"\xff\x4f\xff\x51", 0, "image/jp2"),
)
_FTYP_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic",
                b"heix": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif",
                b"hevc": "image/heic"}  # fmt: skip


def sniff_image(data: bytes) -> str | None:
    """The image MIME type from the magic bytes, or None when the bytes are not an image."""
    head = data[:32]
    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    if re.match(rb"P[3-6]\s", head):
        return "image/x-portable-anymap"
    return None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; hashing first also hides the expected token's length."""
    a = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(a, b)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets per client key: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: float | None = None) -> float:
        """0.0 when the request may proceed, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def waiting(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` has a token again (0.0 when it has one); takes nothing."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        full_after = self.burst / self.rate
        stale = [k for k, b in self._buckets.items() if now - b.stamp >= full_after]
        for key in stale or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


ErrorBody = Callable[[int, str], dict[str, Any]]
"""The JSON body of an error a middleware answers itself, from its status and message."""


def detail_body(_status: int, message: str) -> dict[str, Any]:
    """FastAPI's error shape, `{"detail": message}` (serve-openai passes OpenAI's instead)."""
    return {"detail": message}


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is over the limit of {limit:,} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes while they stream in, before they are buffered whole.

    A declared Content-Length over the limit is refused at once; otherwise the bytes are
    counted as they arrive and the request is cut off with 413 the moment the count passes it.
    """

    def __init__(self, app: ASGIApp, limit: int, error_body: ErrorBody | None = None) -> None:
        self.app = app
        self.limit = limit
        self.error_body = error_body or detail_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await _run_or_refuse(self.app, scope, limited_receive, send, BodyTooLarge, self._refuse)

    async def _refuse(self, send: Send) -> None:
        message = f"request body is over the upload limit of {self.limit:,} bytes"
        await _send_json(send, 413, self.error_body(413, message))


async def _run_or_refuse(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, error: type[Exception],
    refuse: Callable[[Send], Awaitable[None]],
) -> None:  # fmt: skip
    """Run `app`; when it raises `error` (from `receive`) before its response has started,
    `refuse` answers instead. After the start nothing can be sent: the connection just ends."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except error:
        if not started:
            await refuse(send)


_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host: str) -> str:
    """The name part of a Host header (no port, no IPv6 brackets), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostOriginMiddleware:
    """Loopback hardening that holds without a token.

    DNS rebinding: a hostile page whose name now resolves to 127.0.0.1 reaches the server
    with its own name in the Host header, so a Host outside `allowed` (None = any) gets 400;
    the server's own address (the ASGI `server`) is always allowed. Cross-site requests: a
    state-changing request whose Origin is not this very host (or is "null"), or that the
    browser marks `Sec-Fetch-Site: cross-site`, gets 403. Clients that send no Origin (curl,
    SDKs) are not browsers and pass.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name, value)
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed is not None and not self._host_ok(host_name(host), scope):
            await _send_json(
                send,
                400,
                detail_body(400, "the Host header names a host this server does not serve"),
            )
            return
        if scope.get("method") in _STATE_CHANGING:
            origin = headers.get(b"origin")
            site = headers.get(b"sec-fetch-site", b"").lower()
            cross = site == b"cross-site"
            if origin is not None:
                text = origin.decode("latin-1").strip().lower()
                netloc = text.split("://", 1)[1] if "://" in text else ""
                cross = text == "null" or netloc.rstrip("/") != host.strip().lower()
            if cross:
                await _send_json(send, 403, detail_body(403, "cross-origin request refused"))
                return
        await self.app(scope, receive, send)

    def _host_ok(self, name: str, scope: Scope) -> bool:
        assert self.allowed is not None
        server = scope.get("server")
        own = str(server[0]).lower().strip("[]") if server else None
        return name in self.allowed or name == own


class RequestTimeout(Exception):
    pass


class RequestDeadlineMiddleware:
    """Slow bodies: each chunk must arrive within `idle_s`, the whole body within `total_s`.

    A client that opens an upload and then sends a byte a minute would otherwise hold its
    connection (and the memory of what it sent) for ever. Only the body is timed: waiting for
    a disconnect after the body (streaming responses do) is not.
    """

    def __init__(
        self, app: ASGIApp, idle_s: float, total_s: float, error_body: ErrorBody | None = None
    ) -> None:
        self.app = app
        self.idle_s = idle_s
        self.total_s = total_s
        self.error_body = error_body or detail_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import anyio

        deadline = time.monotonic() + self.total_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            wait = min(self.idle_s, deadline - time.monotonic())
            try:
                with anyio.fail_after(max(wait, 0.0)):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await _run_or_refuse(self.app, scope, timed_receive, send, RequestTimeout, self._refuse)

    async def _refuse(self, send: Send) -> None:
        await _send_json(send, 408, self.error_body(408, "the request body arrived too slowly"))


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    import json

    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
