"""What `forenscope serve` and `forenscope serve-openai` share before they start uvicorn."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .settings import TOKEN_ENV

if TYPE_CHECKING:
    import uvicorn


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
