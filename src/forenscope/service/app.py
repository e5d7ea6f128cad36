"""`create_app(settings)`: the FastAPI application (API under /v1, web UI at /)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import (
    ImageDecodeError,
    ImageTooLargeError,
    InputError,
    UnknownExpertError,
)
from ..mllm.errors import LLMError
from ..video.limits import VideoDecodeError, VideoTooLargeError
from . import routes_analyses, routes_inspect, routes_misc
from .admission import BusyError
from .chat import ChatBackend
from .deps import Service, require_token
from .engine import UnsupportedMediaError
from .fetch import FetchFailedError, UrlRefusedError
from .metrics import Metrics
from .schemas import AnalyzeUrlRequest, JobRequest
from .security import BodyLimitMiddleware, HostOriginMiddleware, RequestDeadlineMiddleware
from .settings import Settings
from .workers import AnalysisTimeoutError, WorkerCrashedError

UI_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
            "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
            "/ui/app.css": ("app.css", "text/css; charset=utf-8")}  # fmt: skip
UI_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
MULTIPART_SLACK = 64 * 1024  # form boundaries and small fields around the file


def create_app(settings: Settings, *, chat_backend: ChatBackend | None = None) -> FastAPI:
    """A new, independent app. Raises ConfigError when exposed beyond loopback without a token."""
    settings.check_exposure()
    from ..experts.registry import preload_experts

    preload_experts()  # every first import now, on one thread, before any request can race it
    service = Service.build(settings, chat_backend)
    if settings.warm_up:
        service.analyzer.warm_up()  # models too: their first load would stall every route

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.jobs.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="Forenscope", version=__version__, lifespan=lifespan,
        description="Explainable image forensics: is it AI-generated or tampered, where, why.",
        docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json",  # docs UI needs a CDN
    )  # fmt: skip
    app.state.service = service
    v1 = APIRouter(prefix="/v1")
    v1.include_router(routes_misc.public)
    guarded = [Depends(require_token)]
    v1.include_router(routes_misc.router, dependencies=guarded)
    v1.include_router(routes_analyses.router, dependencies=guarded)
    v1.include_router(routes_inspect.router, dependencies=guarded)
    app.include_router(v1)
    _add_ui(app)
    _add_error_handlers(app)
    # The largest file either kind may be; each upload is then held to its own kind's limit.
    body_limit = max(settings.max_upload_bytes, settings.max_clip_bytes) + MULTIPART_SLACK
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)
    app.add_middleware(
        RequestDeadlineMiddleware, idle_s=settings.body_idle_timeout_s,
        total_s=settings.body_timeout_s,
    )  # fmt: skip
    app.add_middleware(HostOriginMiddleware, allowed=settings.host_allowlist())
    app.add_middleware(ObserveMiddleware, metrics=service.metrics)
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """OpenAPI from the routes, plus the JSON bodies routes parse themselves."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (AnalyzeUrlRequest, JobRequest):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    app.openapi_schema = schema
    return schema


def _add_ui(app: FastAPI) -> None:
    static = resources.files(__package__) / "static"
    for route, (name, media) in UI_FILES.items():
        content = (static / name).read_bytes()

        def serve(content: bytes = content, media: str = media) -> Response:
            return Response(content, media_type=media, headers={"Cache-Control": "no-cache"})

        app.add_api_route(route, serve, methods=["GET"], include_in_schema=False)


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (AnalysisTimeoutError, 422),
    (ImageTooLargeError, 413),
    (VideoTooLargeError, 413),
    (VideoDecodeError, 422),
    (UnsupportedMediaError, 415),
    (ImageDecodeError, 422),
    (UrlRefusedError, 400),
    (FetchFailedError, 502),
    (InputError, 400),
    (UnknownExpertError, 422),
)


def _add_error_handlers(app: FastAPI) -> None:
    metrics: Metrics = app.state.service.metrics

    async def on_input_error(_request: Request, exc: Exception) -> Response:
        status = next(code for cls, code in _STATUS if isinstance(exc, cls))
        metrics.observe_failure(type(exc).__name__)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def on_busy(_request: Request, exc: Exception) -> Response:
        metrics.observe_failure("BusyError")
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "2"})

    async def on_worker_crash(_request: Request, exc: Exception) -> Response:
        # Out of memory, most likely, with other analyses running: a retry may well succeed.
        metrics.observe_failure("WorkerCrashedError")
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "10"})

    async def on_llm_error(_request: Request, exc: Exception) -> Response:
        # The configured LLM failed (after its retries); the message is already key-redacted.
        metrics.observe_failure(type(exc).__name__)
        return JSONResponse({"detail": f"the LLM endpoint failed: {exc}"}, status_code=502)

    app.add_exception_handler(InputError, on_input_error)
    app.add_exception_handler(UnknownExpertError, on_input_error)
    app.add_exception_handler(BusyError, on_busy)
    app.add_exception_handler(WorkerCrashedError, on_worker_crash)
    app.add_exception_handler(LLMError, on_llm_error)


class ObserveMiddleware:
    """Counts requests and latencies by route template, and adds security headers."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer")]  # fmt: skip
                if b"x-frame-options" not in names:  # a report the UI frames says SAMEORIGIN
                    extra.append((b"x-frame-options", b"DENY"))
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", UI_CSP.encode()))
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            if scope.get("path", "").startswith("/v1/") and not path.startswith("/v1"):
                path = "/v1" + path  # routes of included routers report their own path
            self.metrics.observe_request(
                scope.get("method", "?"), path, status, time.perf_counter() - start
            )
