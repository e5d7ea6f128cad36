"""Service settings: one typed object, defaults in one place, unknown keys rejected."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..errors import ConfigError
from ..io.limits import MB, Limits, default_memory_budget_mb

TOKEN_ENV = "FORENSCOPE_TOKEN"
MAX_THREADS_COUNTED = 4  # the memory estimate was measured for 1-2 expert threads; capped


class AnalysisSettings(BaseModel):
    """How both servers (`serve`, `serve-openai`) run analyses: one definition of each knob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_pixels: int = Field(default=60_000_000, gt=0)
    memory_budget_mb: int = Field(
        default_factory=default_memory_budget_mb, ge=64,
        description="estimated peak memory of the analyses running at once (default: half "
        "the machine's memory); an image whose own estimate is larger is refused before "
        "decoding (413), others wait for room",
    )  # fmt: skip
    experts: list[str] | None = Field(default=None, description="None = every registered expert")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    workers: int = Field(default=2, ge=1, description="analyses run at the same time")
    expert_threads: int | None = Field(default=None, ge=1)
    warm_up: bool = Field(
        default=True, description="load every model of `experts` before the port opens"
    )
    isolation: Literal["thread", "process"] = Field(
        default="thread",
        description="'process': each analysis slot is a worker process (per-image time limit, "
        "a crash costs one request; the `serve` and `serve-openai` commands do this); "
        "'thread': in this process",
    )
    analysis_timeout_s: float = Field(
        default=300.0, gt=0.0,
        description="wall-clock limit of one analysis with isolation='process'; past it the "
        "request fails (422) and its worker process is replaced",
    )  # fmt: skip

    def limits(self, max_bytes: int) -> Limits:
        """The decoding limits of one analysis, for images of at most `max_bytes`."""
        return Limits(
            max_bytes=max_bytes, max_pixels=self.max_pixels,
            max_memory_bytes=self.memory_budget_mb * MB,
            expert_threads=self.expert_threads or min(os.cpu_count() or 1, MAX_THREADS_COUNTED),
        )  # fmt: skip


class Settings(AnalysisSettings):
    """Everything `create_app` needs. `token` is a SecretStr so it never shows in a repr or log."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: SecretStr | None = None
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="per image")
    max_clip_bytes: int = Field(
        default=100 * 1024 * 1024, gt=0,
        description="per video clip (also within FORENSCOPE_VIDEO_MAX_BYTES); its duration, "
        "frames and pixels are checked against the video limits before decoding",
    )  # fmt: skip
    max_pending: int = Field(
        default=32, ge=1, description="analyses waiting (each holds its upload) before 503"
    )
    # Slow or idle clients (see launch.server_config): the request line and headers, then each
    # body chunk and the whole body, must arrive within these; otherwise 408 / disconnect.
    header_timeout_s: float = Field(default=10.0, gt=0.0)
    body_idle_timeout_s: float = Field(default=20.0, gt=0.0)
    body_timeout_s: float = Field(default=300.0, gt=0.0)
    keep_alive_s: int = Field(default=5, ge=1)
    # Loopback hardening against DNS rebinding and cross-site requests. None = the loopback
    # names (plus `host`) when bound to loopback, any name when exposed (a token is required).
    allowed_hosts: list[str] | None = None
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses whose X-Forwarded-For is believed; none by default, so a client "
        "cannot pick its own rate-limit bucket",
    )
    # Per-client token buckets; a rate of 0 disables that bucket.
    analyze_rate_per_min: float = Field(default=30.0, ge=0.0)
    analyze_burst: int = Field(default=10, ge=1)
    read_rate_per_s: float = Field(default=50.0, ge=0.0)
    read_burst: int = Field(default=300, ge=1)
    # Failed token attempts per client: after the burst, 429 until the bucket refills.
    auth_fail_rate_per_min: float = Field(default=6.0, ge=0.0)
    auth_fail_burst: int = Field(default=10, ge=1)
    # URL fetching (SSRF guard); every phase has a deadline (see fetch.py)
    fetch_timeout_s: float = Field(default=10.0, gt=0.0)
    fetch_connect_timeout_s: float = Field(default=3.0, gt=0.0)
    fetch_header_timeout_s: float = Field(default=5.0, gt=0.0)
    fetch_concurrency: int = Field(default=8, ge=1, description="URL fetches at once before 503")
    fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    fetch_allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs a URL may reach although private/loopback (tests, intranets)",
    )
    history_page_max: int = Field(default=100, ge=1)

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)  # raises ValueError -> ValidationError
        return value

    def host_allowlist(self) -> frozenset[str] | None:
        """Host header names accepted (lower case, no port), or None for any."""
        if self.allowed_hosts is not None:
            return frozenset(h.strip().lower().strip("[]") for h in self.allowed_hosts)
        if not is_loopback_host(self.host):
            return None
        return frozenset({"localhost", "127.0.0.1", "::1", self.host.strip().lower().strip("[]")})

    @property
    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None

    def check_exposure(self) -> None:
        """Refuse to serve beyond loopback without a token (ConfigError)."""
        if self.token_value:
            return
        if not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host!r} without a token: set {TOKEN_ENV} "
                "(clients then send 'Authorization: Bearer <token>'), or bind to 127.0.0.1"
            )


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback literals; anything else (0.0.0.0, names) is exposed."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
