"""`forenscope serve-openai`: Forenscope behind an OpenAI-compatible chat-completions API.

Any OpenAI client can send an image (a base64 data URL in the messages) to /v1/chat/completions
and get the forensic verdict back (see `openai_wire` for what is answered when). Guards are the
HTTP service's: a token whenever the server is not on loopback, a streaming body limit, magic-
byte sniffing of the decoded image (its declared type is ignored), pixel limits before decoding.
Needs the `service` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ConfigError, ImageDecodeError, ImageTooLargeError, InputError
from ..io.limits import Limits
from ..service.security import BodyLimitMiddleware, bearer_token, sniff_image, token_matches
from ..service.settings import TOKEN_ENV, is_loopback_host
from ..types import Report
from .openai_stream import sse_events
from .openai_wire import WireError, check_request, completion, read_conversation

BASE64_SLACK = 256 * 1024  # JSON around the data URL


class OpenAISettings(BaseModel):
    """What `create_openai_app` needs; `token` never shows in a repr or log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    token: SecretStr | None = None
    model_id: str = "forenscope"
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=60_000_000, gt=0)
    experts: list[str] | None = None
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    workers: int = Field(default=2, ge=1, description="analyses run at the same time")
    cache_size: int = Field(default=64, ge=0, description="reports kept by image sha256")

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
    """The last reports by image sha256: n votes or a follow-up question reuse the analysis."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Report] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Report | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, report: Report) -> None:
        with self._lock:
            self._items[key] = report
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Analyst:
    """Decodes under limits and analyses, at most `workers` at a time."""

    def __init__(self, settings: OpenAISettings) -> None:
        from ..experts import get_expert, list_experts

        # Load the registry now, on one thread: its lazy first load is not thread-safe (two
        # first requests at once could see it half-filled). Unknown names fail here, too.
        list_experts()
        for name in settings.experts or ():
            get_expert(name)
        self.settings = settings
        self.limits = Limits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_pixels)
        self.cache = ReportCache(settings.cache_size)
        self._slots = threading.BoundedSemaphore(settings.workers)

    def report(self, data: bytes) -> Report:
        from ..io import load_image
        from ..pipeline import analyze_image

        self.limits.check_bytes(len(data), "image")
        if sniff_image(data) is None:
            raise WireError(415, "the image_url content is not an image of a supported format "
                            "(checked by its leading bytes)", "unsupported_image")  # fmt: skip
        key = hashlib.sha256(data).hexdigest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        with self._slots:
            image = load_image(data, limits=self.limits)
            s = self.settings
            report = analyze_image(image, experts=s.experts, threshold=s.threshold)
        self.cache.put(key, report)
        return report


_INPUT_STATUS = (
    (ImageTooLargeError, 413, "image_too_large"),
    (ImageDecodeError, 422, "invalid_image"),
    (InputError, 400, "invalid_image"),
)


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(WireError(status, message, code).body(), status, headers=headers)


def create_openai_app(settings: OpenAISettings) -> FastAPI:
    """A new app; raises ConfigError when exposed beyond loopback without a token."""
    settings.check_exposure()
    analyst = Analyst(settings)
    app = FastAPI(title="Forenscope (OpenAI-compatible)", version=__version__,
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    model_card = {"id": settings.model_id, "object": "model", "created": 0,
                  "owned_by": "forenscope"}  # fmt: skip

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        expected = settings.token_value
        if expected and request.url.path.startswith("/v1/"):
            given = bearer_token(request.headers.get("authorization"))
            if given is None or not token_matches(given, expected):
                return _error(401, "missing or wrong bearer token", "invalid_api_key",
                              {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return await call_next(request)

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
            body = check_request(await request.json(), settings.model_id)
            conv = read_conversation(body["messages"], settings.max_image_bytes)
            report = await anyio.to_thread.run_sync(analyst.report, conv.image)
        except WireError as exc:
            return JSONResponse(exc.body(), exc.status)
        except ValueError:  # the body is not JSON
            return _error(400, "the body is not valid JSON", "invalid_body")
        except InputError as exc:
            status, code = next((s, c) for cls, s, c in _INPUT_STATUS if isinstance(exc, cls))
            return _error(status, str(exc), code)
        done = completion(report, body, conv, settings.model_id, f"forenscope-{__version__}",
                          f"chatcmpl-{uuid.uuid4().hex}", int(time.time()))  # fmt: skip
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

    app.add_middleware(BodyLimitMiddleware, limit=settings.max_image_bytes * 4 // 3 + BASE64_SLACK)
    return app
