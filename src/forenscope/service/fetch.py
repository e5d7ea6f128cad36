"""SSRF-safe URL fetching for `POST /v1/analyze {"url": ...}`.

Each hop: http/https only, no credentials in the URL, the host name resolved here and EVERY
address checked (private, loopback, link-local, multicast, reserved, unspecified, and the IPv4
inside IPv4-mapped / 6to4 / Teredo IPv6 addresses), then the connection is made to the checked
address itself (Host header and TLS SNI keep the name), so DNS cannot answer differently between
check and use. Redirects are followed by hand and re-checked, at most `max_redirects`; the body is
read in chunks up to `max_bytes`; the whole fetch has a deadline. Proxy variables are ignored.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from ..errors import ImageTooLargeError, InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_REDIRECTS = {301, 302, 303, 307, 308}


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

    @classmethod
    def build(
        cls, max_bytes: int, timeout_s: float, max_redirects: int, allow: Sequence[str]
    ) -> FetchPolicy:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
        return cls(max_bytes, timeout_s, max_redirects, nets)


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

    deadline = time.monotonic() + policy.timeout_s
    timeout = httpx.Timeout(policy.timeout_s)
    with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for _hop in range(policy.max_redirects + 1):
            target, host_header, sni = _checked_target(url, policy)
            extensions = {"sni_hostname": sni} if sni else {}
            try:
                with client.stream(
                    "GET", target, headers={"Host": host_header, "Accept": "image/*"},
                    extensions=extensions,
                ) as resp:  # fmt: skip
                    if resp.status_code in _REDIRECTS and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    if resp.status_code != 200:
                        raise FetchFailedError(f"{_safe(url)} answered HTTP {resp.status_code}")
                    return _read_body(resp, policy, deadline, url), url
            except httpx.HTTPError as exc:
                msg = f"fetching {_safe(url)} failed: {type(exc).__name__}"
                raise FetchFailedError(msg) from None
    raise UrlRefusedError(f"more than {policy.max_redirects} redirects; refused")


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
