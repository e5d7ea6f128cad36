"""SSRF-safe URL fetching for `POST /v1/analyze {"url": ...}`.

Each hop: http/https only, no credentials in the URL, the host name resolved here and EVERY
address checked (private, loopback, link-local, multicast, reserved, unspecified, and the IPv4
inside IPv4-mapped / 6to4 / Teredo IPv6 addresses), then the connection is made to the checked
address itself (Host header and TLS SNI keep the name), so DNS cannot answer differently between
check and use. Redirects are followed by hand and re-checked, at most `max_redirects`; the body is
read in chunks up to `max_bytes`. Proxy variables are ignored.

Deadlines bound every phase, not only the body: the connection (`connect_timeout_s`), the status
line and headers (`header_timeout_s`, so a host that trickles its headers byte by byte cannot hold
a worker) and the whole fetch with its redirects (`timeout_s`). Every socket operation gets the
smaller of its own timeout and the time left, and a watchdog shuts the sockets down at the total
deadline, so no sequence of slow reads (TLS handshake included) can outlive it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ..errors import ImageTooLargeError, InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_REDIRECTS = {301, 302, 303, 307, 308}

if TYPE_CHECKING:
    import httpcore
    import httpx


class UrlRefusedError(InputError):
    """The URL or an address it resolves to is not allowed (scheme, private target...)."""


class FetchFailedError(InputError):
    """The remote server could not be reached or did not return the image."""


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout_s: float = 10.0
    max_redirects: int = 3
    allow_networks: tuple[IPNetwork, ...] = ()
    connect_timeout_s: float = 3.0
    header_timeout_s: float = 5.0

    @classmethod
    def build(
        cls, max_bytes: int, timeout_s: float, max_redirects: int, allow: Sequence[str],
        connect_timeout_s: float = 3.0, header_timeout_s: float = 5.0,
    ) -> FetchPolicy:  # fmt: skip
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
        return cls(max_bytes, timeout_s, max_redirects, nets, connect_timeout_s, header_timeout_s)


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why `ip` may not be fetched from, or None when it is a public unicast address."""
    inner: IPAddress = ip
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            inner = embedded
    checks = (
        ("loopback", inner.is_loopback),
        ("private", inner.is_private),
        ("link-local", inner.is_link_local),
        ("multicast", inner.is_multicast),
        ("reserved", inner.is_reserved),
        ("unspecified", inner.is_unspecified),
        # fec0::/10 was deprecated (RFC 3879) but is still routed inside some networks.
        ("site-local", isinstance(inner, ipaddress.IPv6Address) and inner.is_site_local),
        ("not globally routable", not inner.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


def check_address(ip: IPAddress, policy: FetchPolicy) -> None:
    if any(ip in net for net in policy.allow_networks):
        return
    reason = forbidden_reason(ip)
    if reason is not None:
        raise UrlRefusedError(f"refused to fetch from {ip}: the address is {reason}")


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailedError(f"cannot resolve host {host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchFailedError(f"host {host!r} has no address")
    return addresses


def fetch_image_bytes(url: str, policy: FetchPolicy) -> tuple[bytes, str]:
    """GET `url` under `policy`; returns (body, final URL). Raises InputError subclasses."""
    import httpx  # only the URL path needs it

    clock = _Deadlines(time.monotonic() + policy.timeout_s)
    # The per-operation timeouts; the deadline clock shortens each to the time left.
    timeout = httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s)
    watchdog = threading.Timer(policy.timeout_s, clock.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        with httpx.Client(
            transport=_deadline_transport(clock), timeout=timeout, trust_env=False,
            follow_redirects=False,
        ) as client:  # fmt: skip
            for _hop in range(policy.max_redirects + 1):
                target, host_header, sni = _checked_target(url, policy)
                extensions = {"sni_hostname": sni} if sni else {}
                # Until the status line and headers are in, the header deadline applies too.
                clock.phase = time.monotonic() + policy.header_timeout_s
                try:
                    with client.stream(
                        "GET", target, headers={"Host": host_header, "Accept": "image/*"},
                        extensions=extensions,
                    ) as resp:  # fmt: skip
                        clock.phase = clock.total
                        if resp.status_code in _REDIRECTS and "location" in resp.headers:
                            url = urljoin(url, resp.headers["location"])
                            continue
                        if resp.status_code != 200:
                            raise FetchFailedError(f"{_safe(url)} answered HTTP {resp.status_code}")
                        return _read_body(resp, policy, clock.total, url), url
                except httpx.TimeoutException:
                    raise FetchFailedError(_timeout_message(url, policy, clock)) from None
                except httpx.HTTPError as exc:
                    if clock.expired():  # the watchdog shut the socket down
                        raise FetchFailedError(_timeout_message(url, policy, clock)) from None
                    msg = f"fetching {_safe(url)} failed: {type(exc).__name__}"
                    raise FetchFailedError(msg) from None
    finally:
        watchdog.cancel()
    raise UrlRefusedError(f"more than {policy.max_redirects} redirects; refused")


def _timeout_message(url: str, policy: FetchPolicy, clock: _Deadlines) -> str:
    if clock.phase < clock.total and time.monotonic() >= clock.phase:
        return (
            f"{_safe(url)} did not send its status line and headers within "
            f"{policy.header_timeout_s:g}s"
        )
    return (
        f"fetching {_safe(url)} timed out (connect {policy.connect_timeout_s:g}s, headers "
        f"{policy.header_timeout_s:g}s, total {policy.timeout_s:g}s)"
    )


class _Deadlines:
    """The fetch's total deadline and the current phase's (headers), shared by its sockets."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.phase = total
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._aborted = False

    def left(self, timeout: float | None) -> float:
        """`timeout` shortened to the time left before the nearer deadline."""
        import httpcore

        left = min(self.total, self.phase) - time.monotonic()
        if left <= 0 or self._aborted:
            raise httpcore.ReadTimeout("deadline passed")
        return left if timeout is None else min(timeout, left)

    def expired(self) -> bool:
        return self._aborted or time.monotonic() >= min(self.total, self.phase)

    def track(self, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
            if self._aborted:
                self.abort()

    def abort(self) -> None:
        """Wake any read blocked past the deadline (shutdown interrupts a blocking recv)."""
        self._aborted = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _deadline_transport(clock: _Deadlines) -> httpx.HTTPTransport:
    """httpx's own transport over a network backend that enforces `clock`."""
    import httpcore
    import httpx

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self.inner = inner
            clock.track(inner.get_extra_info("socket"))

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.inner.read(max_bytes, clock.left(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, clock.left(timeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.NetworkStream:  # fmt: skip
            tls = self.inner.start_tls(ssl_context, server_hostname, clock.left(timeout))
            return Stream(tls)

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class Backend(httpcore.SyncBackend):
        def connect_tcp(
            self, host: str, port: int, timeout: float | None = None,
            local_address: str | None = None, socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:  # fmt: skip
            inner = super().connect_tcp(
                host, port, clock.left(timeout), local_address, socket_options
            )
            return Stream(inner)

    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend; its pool is rebuilt with ours (the
    # deadline tests fail loudly if a future httpx renames `_pool`).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=Backend()
    )
    return transport


def _checked_target(url: str, policy: FetchPolicy) -> tuple[str, str, str | None]:
    """(URL with the checked IP as host, Host header, SNI name or None)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlRefusedError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise UrlRefusedError(f"only http and https URLs are fetched, not {parsed.scheme!r}")
    if parsed.userinfo:
        raise UrlRefusedError("URLs with credentials are not fetched")
    host = parsed.host
    if not host:
        raise UrlRefusedError("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolve(host, port)
    for ip in addresses:  # all of them: a name must not mix public and private answers
        check_address(ip, policy)
    default_port = parsed.port is None
    host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
    target = str(parsed.copy_with(host=str(addresses[0])))
    is_name = not _is_ip_literal(host)
    return target, host_header, (host if parsed.scheme == "https" and is_name else None)


def _read_body(resp: object, policy: FetchPolicy, deadline: float, url: str) -> bytes:
    import httpx

    assert isinstance(resp, httpx.Response)
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise ImageTooLargeError(
            f"{_safe(url)} declares {int(declared):,} bytes, over the limit of "
            f"{policy.max_bytes:,} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > policy.max_bytes:
            raise ImageTooLargeError(
                f"{_safe(url)} sent more than the limit of {policy.max_bytes:,} bytes"
            )
        if time.monotonic() > deadline:
            raise FetchFailedError(f"fetching {_safe(url)} took longer than {policy.timeout_s}s")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _safe(url: str) -> str:
    """The URL shortened for messages (no query string: it may carry secrets)."""
    return url.split("?", 1)[0][:200]
