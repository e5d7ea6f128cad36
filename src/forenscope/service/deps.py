"""The per-app service object and the FastAPI dependencies that guard every /v1 route."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, cast

import anyio
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .admission import BusyError
from .blobs import BlobStore
from .chat import ChatBackend
from .engine import Analyzer
from .fetch import FetchPolicy, fetch_image_bytes
from .jobs import JobRunner
from .metrics import Metrics
from .security import ID_PATTERN, NAME_PATTERN, RateLimiter, retry_after_header, token_matches
from .settings import Settings
from .store import AnalysisRow, Store


@dataclass
class Service:
    """Everything one app instance owns; nothing lives in module globals."""

    settings: Settings
    store: Store
    blobs: BlobStore
    metrics: Metrics
    analyzer: Analyzer
    jobs: JobRunner
    fetch_policy: FetchPolicy
    read_limiter: RateLimiter
    analyze_limiter: RateLimiter
    auth_fail_limiter: RateLimiter
    chat_backend: ChatBackend | None = None
    closed: bool = field(default=False)
    # Admission before any worker thread is taken: waiting analyses and slow URL hosts must
    # never fill the thread pool that reads and /v1/health share (extra ones get 503 at once).
    analysis_slots: threading.BoundedSemaphore = field(init=False)
    fetch_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.analysis_slots = threading.BoundedSemaphore(s.workers + s.max_pending)
        self.fetch_slots = threading.BoundedSemaphore(s.fetch_concurrency)

    async def run_analysis(self, work: Callable[[], T]) -> T:
        return await _admitted(self.analysis_slots, work, "too many analyses are waiting")

    async def fetch(self, url: str) -> tuple[bytes, str]:
        return await _admitted(
            self.fetch_slots, lambda: fetch_image_bytes(url, self.fetch_policy),
            "too many URL fetches are in progress",
        )  # fmt: skip

    @classmethod
    def build(cls, settings: Settings, chat_backend: ChatBackend | None) -> Service:
        data = settings.data_dir
        store = Store(data / "forenscope.sqlite3")
        blobs = BlobStore(data)
        metrics = Metrics()
        analyzer = Analyzer(settings, store, blobs, metrics)
        policy = FetchPolicy.build(
            settings.max_upload_bytes, settings.fetch_timeout_s, settings.fetch_max_redirects,
            settings.fetch_allow_networks, settings.fetch_connect_timeout_s,
            settings.fetch_header_timeout_s,
        )  # fmt: skip
        return cls(
            settings=settings, store=store, blobs=blobs, metrics=metrics, analyzer=analyzer,
            jobs=JobRunner(analyzer, store, blobs, policy, settings.workers), fetch_policy=policy,
            read_limiter=RateLimiter(settings.read_rate_per_s, settings.read_burst),
            analyze_limiter=RateLimiter(settings.analyze_rate_per_min / 60.0,
                                        settings.analyze_burst),
            auth_fail_limiter=RateLimiter(settings.auth_fail_rate_per_min / 60.0,
                                          settings.auth_fail_burst),
            chat_backend=chat_backend,
        )  # fmt: skip

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.jobs.stop()
            self.analyzer.close()
            self.store.close()


T = TypeVar("T")


async def _admitted(slots: threading.BoundedSemaphore, work: Callable[[], T], busy: str) -> T:
    if not slots.acquire(blocking=False):
        raise BusyError(f"{busy}; retry later")
    try:
        return await anyio.to_thread.run_sync(work)
    finally:
        slots.release()


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in the worker-thread
# pool, so a pool filled by slow work would otherwise stall every route, /v1/health included.
async def get_service(request: Request) -> Service:
    return cast(Service, request.app.state.service)


ServiceDep = Annotated[Service, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="required when the server has a token")


def client_key(request: Request) -> str:
    """The peer address of the connection. X-Forwarded-For is never read here: the server
    believes it only from `trusted_proxies` (see launch.server_config)."""
    return request.client.host if request.client else "unknown"


def _limit(limiter: RateLimiter, request: Request, svc: Service) -> None:
    wait = limiter.acquire(client_key(request))
    if wait > 0:
        svc.metrics.observe_rate_limited()
        headers = {"Retry-After": retry_after_header(wait)}
        raise HTTPException(429, "rate limit exceeded; retry later", headers=headers)


async def limit_reads(request: Request, svc: ServiceDep) -> None:
    _limit(svc.read_limiter, request, svc)


async def limit_analyses(request: Request, svc: ServiceDep) -> None:
    _limit(svc.analyze_limiter, request, svc)


async def require_token(
    request: Request,
    svc: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = svc.settings.token_value
    if not expected:
        return
    key = client_key(request)
    wait = svc.auth_fail_limiter.waiting(key)
    if wait > 0:  # too many wrong tokens: not even checked, so guessing gains nothing
        svc.metrics.observe_rate_limited()
        headers = {"Retry-After": retry_after_header(wait)}
        raise HTTPException(429, "too many failed token attempts; retry later", headers=headers)
    if credentials is None or not token_matches(credentials.credentials, expected):
        if credentials is not None:  # a wrong guess counts; a request without a token does not
            svc.auth_fail_limiter.acquire(key)
        # The message never repeats what was sent.
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


AnalysisId = Annotated[str, Path(pattern=ID_PATTERN, description="32 hex digits")]
ArtefactName = Annotated[str, Path(pattern=NAME_PATTERN)]


def get_row(svc: Service, analysis_id: str) -> AnalysisRow:
    row = svc.store.get_analysis(analysis_id)
    if row is None:
        raise HTTPException(404, "no analysis with this id")
    return row
