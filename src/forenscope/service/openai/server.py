"""`forenscope serve-openai`: Forenscope behind an OpenAI-compatible chat-completions API.

Any OpenAI client can send an image (a base64 data URL in the messages) to /v1/chat/completions
and get the forensic verdict back (see `openai_wire` for what is answered when). Guards are the
HTTP service's: a token whenever the server is not on loopback, a streaming body limit, magic-
byte sniffing of the decoded image (its declared type is ignored), pixel and memory limits
before decoding, a cap on requests in progress (503 with Retry-After beyond it, before the body
is read) and a cache of answers bounded in bytes. Needs the `service` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import __version__
from ...errors import ConfigError, ImageDecodeError, ImageTooLargeError, InputError
from ...io.limits import MB
from ...types import Report
from ..admission import AnalysisGate, BusyError
from ..security import (
    BodyLimitMiddleware,
    RequestDeadlineMiddleware,
    bearer_token,
    sniff_image,
    token_matches,
)
from ..settings import TOKEN_ENV, AnalysisSettings, is_loopback_host
from ..workers import AnalysisTimeoutError, WorkerCrashedError, analyze_to_json
from .stream import sse_events
from .wire import WireError, check_request, completion, read_conversation

BASE64_SLACK = 256 * 1024  # JSON around the data URL


class OpenAISettings(AnalysisSettings):
    """What `create_openai_app` needs; `token` never shows in a repr or log."""

    host: str = "127.0.0.1"
    token: SecretStr | None = None
    model_id: str = "forenscope"
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_queue: int = Field(
        default=4, ge=0, description="requests waiting for a worker (each holds its image) "
        "before 503 with Retry-After",
    )  # fmt: skip
    cache_size: int = Field(default=64, ge=0, description="answers kept, by image sha256")
    cache_bytes: int = Field(
        default=32 * MB, ge=0, description="their total size: the report JSON, never the maps"
    )

    @property
    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None

    def check_exposure(self) -> None:
        if not self.token_value and not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host!r} without a token: set {TOKEN_ENV}, or "
                "bind to 127.0.0.1"
            )


class ReportCache:
    """The last reports by image sha256, so n votes or a follow-up question reuse the analysis.

    What is kept is the report's JSON (a few KB: verdict, evidence, regions, explanation),
    never the Report object with its full-resolution heatmaps and mask, and the total is
    bounded in bytes as well as in entries.
    """

    def __init__(self, size: int, max_bytes: int = 32 * MB) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Report | None:
        with self._lock:
            blob = self._items.get(key)
            if blob is None:
                return None
            self._items.move_to_end(key)
        return Report.model_validate_json(blob)

    def put(self, key: str, report: Report) -> None:
        blob = report.model_dump_json().encode()
        if len(blob) > self.max_bytes or self.size == 0:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self.nbytes -= len(old) if old is not None else 0
            self._items[key] = blob
            self.nbytes += len(blob)
            while len(self._items) > self.size or self.nbytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.nbytes -= len(dropped)


class Analyst:
    """Decodes under limits and analyses, at most `workers` at a time: in worker processes
    under the per-image time limit with isolation='process' (what `serve-openai` runs)."""

    def __init__(self, settings: OpenAISettings) -> None:
        from ...experts import get_expert, list_experts

        # Load the registry now, on one thread: its lazy first load is not thread-safe (two
        # first requests at once could see it half-filled). Unknown names fail here, too.
        from ...experts.registry import preload_experts

        list_experts()
        preload_experts()  # the experts' own first imports (cv2...) too
        for name in settings.experts or ():
            get_expert(name)
        self.settings = settings
        # The middleware already caps the requests in progress at workers + max_queue.
        self.gate = AnalysisGate(
            settings, settings.max_image_bytes, settings.workers + settings.max_queue
        )
        self.limits = self.gate.limits
        self.cache = ReportCache(settings.cache_size, settings.cache_bytes)

    def report(self, data: bytes) -> Report:
        from ...io.image import probe_image

        self.limits.check_bytes(len(data), "image")
        if sniff_image(data) is None:
            raise WireError(415, "the image_url content is not an image of a supported format "
                            "(checked by its leading bytes)", "unsupported_image")  # fmt: skip
        key = hashlib.sha256(data).hexdigest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        width, height = probe_image(data, self.limits)  # over the budget: refused, not queued
        s = self.settings
        with self.gate.admitted(width, height):
            answer = self.gate.run(
                analyze_to_json, data, self.limits, s.experts, s.threshold, s.expert_threads
            )
        report = Report.model_validate_json(answer)
        self.cache.put(key, report)
        return report


def _parse_json(raw: bytes) -> Any:
    """The body as JSON, or WireError. The C parser raises RecursionError (not ValueError) on a
    body nested beyond the interpreter's recursion limit, such as 100k opening brackets."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise WireError(
            400, "the body is not valid JSON (or nests too deeply)", "invalid_body"
        ) from None


def _check_response_format(body: dict[str, Any]) -> None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema")
        if not isinstance(schema, dict):
            raise WireError(400, "response_format.json_schema must be an object",
                            "invalid_type", "response_format")  # fmt: skip
        if schema.get("schema") is not None and not isinstance(schema["schema"], dict):
            raise WireError(400, "response_format.json_schema.schema must be an object",
                            "invalid_type", "response_format")  # fmt: skip


_INPUT_STATUS = (
    (AnalysisTimeoutError, 422, "analysis_timeout"),  # the image, not the load: no retry
    (ImageTooLargeError, 413, "image_too_large"),
    (ImageDecodeError, 422, "invalid_image"),
    (InputError, 400, "invalid_image"),
)


def _wire_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error shape for what the guarding middlewares refuse (too large, too slow)."""
    code = {408: "request_timeout", 413: "request_too_large"}.get(status, "invalid_request")
    return WireError(status, message, code).body()


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(WireError(status, message, code).body(), status, headers=headers)


def create_openai_app(settings: OpenAISettings) -> FastAPI:
    """A new app; raises ConfigError when exposed beyond loopback without a token."""
    settings.check_exposure()
    analyst = Analyst(settings)
    if settings.warm_up:
        analyst.gate.warm_up()  # worker processes started and their models loaded

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            analyst.gate.close()

    app = FastAPI(title="Forenscope (OpenAI-compatible)", version=__version__,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)  # fmt: skip
    model_card = {"id": settings.model_id, "object": "model", "created": 0,
                  "owned_by": "forenscope"}  # fmt: skip

    in_progress = threading.BoundedSemaphore(settings.workers + settings.max_queue)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        expected = settings.token_value
        if expected and request.url.path.startswith("/v1/"):
            given = bearer_token(request.headers.get("authorization"))
            if given is None or not token_matches(given, expected):
                return _error(401, "missing or wrong bearer token", "invalid_api_key",
                              {"WWW-Authenticate": "Bearer"})  # fmt: skip
        if request.method != "POST" or request.url.path != "/v1/chat/completions":
            return await call_next(request)
        # Refused before the body is read: every admitted request holds its image in memory.
        if not in_progress.acquire(blocking=False):
            return _error(503, "the server is busy: too many requests in progress; retry later",
                          "server_overloaded", {"Retry-After": "2"})  # fmt: skip
        try:
            return await call_next(request)
        finally:
            in_progress.release()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": settings.model_id}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model_id}")
    def model(model_id: str) -> Any:
        if model_id != settings.model_id:
            return _error(404, f"the model {model_id!r} does not exist", "model_not_found")
        return model_card

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        try:
            body = check_request(_parse_json(await request.body()), settings.model_id)
            _check_response_format(body)
            conv = read_conversation(body["messages"], settings.max_image_bytes)
            report = await anyio.to_thread.run_sync(analyst.report, conv.image)
            done = completion(report, body, conv, settings.model_id,
                              f"forenscope-{__version__}", f"chatcmpl-{uuid.uuid4().hex}",
                              int(time.time()))  # fmt: skip
        except WireError as exc:
            return JSONResponse(exc.body(), exc.status)
        except WorkerCrashedError as exc:
            # Out of memory most likely, with other analyses running: a retry may well succeed.
            return _error(503, str(exc), "worker_crashed", {"Retry-After": "10"})
        except BusyError as exc:
            return _error(503, str(exc), "server_overloaded", {"Retry-After": "2"})
        except InputError as exc:
            status, code = next((s, c) for cls, s, c in _INPUT_STATUS if isinstance(exc, cls))
            return _error(status, str(exc), code)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            # A shape the checks above missed: still OpenAI's error JSON, never a bare 500.
            return _error(400, f"malformed request: {type(exc).__name__}", "invalid_request")
        if not body.get("stream"):
            return done
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            sse_events(done, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # Every error an OpenAI client can meet here has OpenAI's shape: {"error": {...}}.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        route = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return _error(404, f"Invalid URL ({route}): Forenscope serves POST "
                          "/v1/chat/completions and GET /v1/models", "unknown_url")  # fmt: skip
        if exc.status_code == 405:
            return _error(405, f"Method not allowed ({route})", "method_not_allowed")
        return _error(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        return _error(400, f"invalid request: {exc.errors()[:3]}", "invalid_request")

    limit = settings.max_image_bytes * 4 // 3 + BASE64_SLACK
    app.add_middleware(BodyLimitMiddleware, limit=limit, error_body=_wire_body)
    app.add_middleware(RequestDeadlineMiddleware, idle_s=20.0, total_s=300.0,
                       error_body=_wire_body)  # fmt: skip  # slow bodies
    return app
