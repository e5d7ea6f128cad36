"""What `forenscope serve` and `forenscope serve-openai` share before they start uvicorn."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .settings import TOKEN_ENV

if TYPE_CHECKING:
    import uvicorn

F = TypeVar("F", bound=Callable[..., Any])

# The flags both servers take for running analyses, defined once.
_ANALYSIS_OPTIONS = (
    click.option(
        "--workers",
        default=2,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Analyses run at the same time.",
    ),  # fmt: skip
    click.option(
        "--memory-budget-mb",
        default=None,
        type=click.IntRange(64),
        help="Estimated peak memory of the analyses running at once (default: half the "
        "machine's memory); larger images are refused before decoding (a 12 MP photo needs "
        "about 2000 with two expert threads).",
    ),  # fmt: skip
    click.option(
        "--analysis-timeout",
        default=300.0,
        show_default=True,
        type=click.FloatRange(min=1.0),
        help="Seconds one analysis may take; past it the request fails (422) and its worker "
        "process is replaced.",
    ),  # fmt: skip
    click.option(
        "--isolation",
        type=click.Choice(["process", "thread"]),
        default="process",
        show_default=True,
        help="'process': each analysis runs in a worker process (the time limit, and a crash "
        "or the OOM killer costs that request alone); 'thread': in the server process, less "
        "memory, no time limit.",
    ),  # fmt: skip
    click.option("--expert", "experts", multiple=True, help="Restrict to these experts (repeat)."),
)


def analysis_options(command: F) -> F:
    """Add the analysis flags (`--workers`, `--memory-budget-mb`, `--analysis-timeout`,
    `--isolation`, `--expert`); read them back with `analysis_settings`."""
    for option in reversed(_ANALYSIS_OPTIONS):
        command = option(command)
    return command


def analysis_settings(
    workers: int, memory_budget_mb: int | None, analysis_timeout: float, isolation: str,
    experts: Sequence[str],
) -> dict[str, Any]:  # fmt: skip
    """The AnalysisSettings fields the analysis flags set. Without --memory-budget-mb the field
    is left out, so its one default (half the machine's memory) applies."""
    fields: dict[str, Any] = {
        "workers": workers, "analysis_timeout_s": analysis_timeout, "isolation": isolation,
        "experts": list(experts) or None,
    }  # fmt: skip
    if memory_budget_mb is not None:
        fields["memory_budget_mb"] = memory_budget_mb
    return fields


@contextmanager
def service_extra_required() -> Iterator[None]:
    """Turn a missing web dependency into a message naming the extra that provides it."""
    try:
        yield
    except ImportError as exc:
        raise click.ClickException(
            f"{exc}; install the service extra: pip install 'forenscope[service]'"
        ) from None


def token_from_env() -> str | None:
    """The access token, read from the environment only: a command-line flag would show it to
    every user of the machine in the process list."""
    return os.environ.get(TOKEN_ENV) or None


def server_config(
    app: Any, *, header_timeout_s: float = 10.0, keep_alive_s: int = 5,
    trusted_proxies: Sequence[str] = (), **kw: Any,
) -> uvicorn.Config:  # fmt: skip
    """The uvicorn configuration both servers run with, hardened against slow and lying clients.

    - The request line and headers must arrive within `header_timeout_s` of the connection (or
      of the previous response on a kept-alive one), else the connection is closed: uvicorn
      alone waits for ever, so a few hundred idle sockets (slowloris) would pile up. h11 caps
      the size of the headers (16 KB); the body is timed by RequestDeadlineMiddleware.
    - X-Forwarded-For is believed only from `trusted_proxies` (uvicorn trusts loopback by
      default, which lets any local client choose its own rate-limit bucket).
    """
    import uvicorn

    return uvicorn.Config(
        app, http=_guarded_h11(header_timeout_s), timeout_keep_alive=keep_alive_s,
        proxy_headers=bool(trusted_proxies), forwarded_allow_ips=list(trusted_proxies),
        **kw,
    )  # fmt: skip


def _guarded_h11(header_timeout_s: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11(H11Protocol):
        """uvicorn's h11 protocol with a deadline for each request's line and headers."""

        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # a request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:
                self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineH11
