"""The per-app service object and the FastAPI dependencies that guard every /v1 route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .blobs import BlobStore
from .chat import ChatBackend
from .engine import Analyzer
from .fetch import FetchPolicy
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
    chat_backend: ChatBackend | None = None
    closed: bool = field(default=False)

    @classmethod
    def build(cls, settings: Settings, chat_backend: ChatBackend | None) -> Service:
        data = settings.data_dir
        store = Store(data / "forenscope.sqlite3")
        blobs = BlobStore(data)
        metrics = Metrics()
        analyzer = Analyzer(settings, store, blobs, metrics)
        policy = FetchPolicy.build(
            settings.max_upload_bytes, settings.fetch_timeout_s, settings.fetch_max_redirects,
            settings.fetch_allow_networks,
        )  # fmt: skip
        return cls(
            settings=settings, store=store, blobs=blobs, metrics=metrics, analyzer=analyzer,
            jobs=JobRunner(analyzer, store, blobs, policy), fetch_policy=policy,
            read_limiter=RateLimiter(settings.read_rate_per_s, settings.read_burst),
            analyze_limiter=RateLimiter(settings.analyze_rate_per_min / 60.0,
                                        settings.analyze_burst),
            chat_backend=chat_backend,
        )  # fmt: skip

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.jobs.stop()
            self.store.close()


def get_service(request: Request) -> Service:
    return cast(Service, request.app.state.service)


ServiceDep = Annotated[Service, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="required when the server has a token")


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(limiter: RateLimiter, request: Request, svc: Service) -> None:
    wait = limiter.acquire(client_key(request))
    if wait > 0:
        svc.metrics.observe_rate_limited()
        headers = {"Retry-After": retry_after_header(wait)}
        raise HTTPException(429, "rate limit exceeded; retry later", headers=headers)


def limit_reads(request: Request, svc: ServiceDep) -> None:
    _limit(svc.read_limiter, request, svc)


def limit_analyses(request: Request, svc: ServiceDep) -> None:
    _limit(svc.analyze_limiter, request, svc)


def require_token(
    svc: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = svc.settings.token_value
    if not expected:
        return
    if credentials is None or not token_matches(credentials.credentials, expected):
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
