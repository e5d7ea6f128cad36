"""Security tests of the HTTP service: auth, limits, sniffing, ids, rate limits, SSRF."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from fastapi.testclient import TestClient
from PIL import Image

from forenscope.errors import ConfigError
from forenscope.forgeries import synthetic_photo
from forenscope.service import Settings, create_app
from forenscope.service.fetch import (
    FetchPolicy,
    UrlRefusedError,
    fetch_image_bytes,
    forbidden_reason,
)
from forenscope.service.security import (
    BodyLimitMiddleware,
    RateLimiter,
    sniff_image,
    token_matches,
)  # fmt: skip

TOKEN = "s3cret-token-value-1234"


def jpeg(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(64, 80, seed=seed)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def settings(tmp: Path, **kw: Any) -> Settings:
    kw.setdefault("analyze_rate_per_min", 0.0)
    kw.setdefault("read_rate_per_s", 0.0)
    kw.setdefault("experts", ["exif", "ela"])
    return Settings(data_dir=tmp, **kw)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as c:
        yield c


def post_file(c: TestClient, data: bytes, name: str = "a.jpg", ctype: str = "image/jpeg") -> Any:
    return c.post("/v1/analyze", files={"file": (name, data, ctype)})


# -- authentication ---------------------------------------------------------------------------


def test_token_is_required_when_configured(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path, token=TOKEN))) as c:
        assert c.get("/v1/health").status_code == 200  # liveness stays public
        assert c.get("/v1/health").json()["auth_required"] is True
        for path in ("/v1/analyses", "/v1/experts", "/v1/metrics", "/v1/jobs/" + "0" * 32):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "5"}
        assert c.get("/v1/analyses", headers=wrong).status_code == 401
        assert c.get("/v1/analyses", headers={"Authorization": TOKEN}).status_code == 401
        r = post_file(c, jpeg())
        assert r.status_code == 401 and TOKEN not in r.text
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/v1/analyses", headers=good).status_code == 200
        r = c.post("/v1/analyze", files={"file": ("a.jpg", jpeg(), "image/jpeg")}, headers=good)
        assert r.status_code == 201 and TOKEN not in r.text
        assert TOKEN not in c.get("/v1/metrics", headers=good).text


def test_token_never_shows_in_settings_repr() -> None:
    s = Settings(data_dir=Path("/tmp/x"), token=TOKEN)
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_refuses_to_start_exposed_without_token(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="without a token"):
        create_app(settings(tmp_path, host=host))
    app = create_app(settings(tmp_path, host=host, token=TOKEN))  # with a token it starts
    app.state.service.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(tmp_path: Path, host: str) -> None:
    create_app(settings(tmp_path, host=host)).state.service.close()


def test_token_compare() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN + "x", TOKEN)
    assert not token_matches("", TOKEN)


# -- inputs -----------------------------------------------------------------------------------


def test_oversized_upload_is_413(tmp_path: Path) -> None:
    with TestClient(
        create_app(settings(tmp_path, max_upload_bytes=20_000, max_clip_bytes=20_000))
    ) as c:
        big = jpeg() + b"\0" * 200_000
        r = post_file(c, big)
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        # Just over the file limit, inside the multipart slack: refused by the byte check.
        r = post_file(c, jpeg() + b"\0" * 25_000)
        assert r.status_code == 413 and "20,000" in r.json()["detail"]
        # Without Content-Length (chunked), the limit is enforced while the body streams.

        def body() -> Iterator[bytes]:
            for _ in range(100):
                yield b"\0" * 16_384

        r = c.post("/v1/analyze", content=body(),
                   headers={"content-type": "multipart/form-data; boundary=xyz"})  # fmt: skip
        assert r.status_code == 413
        assert c.get("/v1/analyses").json()["total"] == 0


def test_body_limit_stops_reading_mid_stream() -> None:
    pulled: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        return {"type": "http.request", "body": b"\0" * 10_000, "more_body": len(pulled) < 100}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):  # an app that buffers the whole body
            pass
        raise AssertionError("the whole body was read")

    scope = {"type": "http", "headers": [(b"content-type", b"multipart/form-data")]}
    anyio.run(BodyLimitMiddleware(app, limit=35_000), scope, receive, send)
    assert len(pulled) == 4  # 40,000 bytes > 35,000: cut off at the fourth chunk
    assert sent[0]["status"] == 413


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A small valid PNG whose IHDR then claims width x height (CRC fixed up)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_decompression_bomb_is_refused_before_decoding(client: TestClient) -> None:
    bomb = bomb_png()
    assert len(bomb) < 200
    r = post_file(client, bomb, "bomb.png", "image/png")
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    # Under Pillow's own hard limit but over the server's max_pixels (60 MP by default).
    r = post_file(client, bomb_png(10_000, 8_000), "big.png", "image/png")
    assert r.status_code == 413 and "10000x8000" in r.json()["detail"]
    assert client.get("/v1/analyses").json()["total"] == 0


def test_non_image_with_an_image_name_is_415(client: TestClient) -> None:
    for payload in (b"<?php system($_GET['c']); ?>", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                    b"%PDF-1.7\n", b"PK\x03\x04zip"):  # fmt: skip
        r = post_file(client, payload, "holiday.jpg", "image/jpeg")
        assert r.status_code == 415, payload
        assert "leading bytes" in r.json()["detail"]


def test_truncated_image_with_right_magic_is_422(client: TestClient) -> None:
    r = post_file(client, jpeg()[:300], "cut.jpg")
    assert r.status_code == 422


def test_sniffing_ignores_name_and_declared_type(client: TestClient) -> None:
    r = post_file(client, jpeg(), "notes.txt", "text/plain")
    assert r.status_code == 201 and r.json()["report"]["image"]["format"] == "JPEG"
    assert sniff_image(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_image(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_image(b"GIF8") is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/analyses/../../forenscope.sqlite3",
        "/v1/analyses/..%2F..%2Fforenscope.sqlite3",
        "/v1/analyses/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/v1/analyses/ABCDEF0123456789ABCDEF0123456789",
        "/v1/analyses/0123456789abcdef0123456789abcdef/../../../etc/passwd",
        "/v1/jobs/..%2f..%2fstaging",
    ],
)
def test_path_traversal_ids_are_refused(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert b"SQLite format" not in r.content and b"root:" not in r.content


def test_path_traversal_artefact_names_are_refused(client: TestClient) -> None:
    a = post_file(client, jpeg()).json()
    base = f"/v1/analyses/{a['id']}/overlays/"
    for name in ("..%2F..%2F..%2Fforenscope.sqlite3", "..%2Freport.json", "report.json%00",
                 "ELA", "..", "%2e%2e"):  # fmt: skip
        r = client.get(base + name + ".png")
        assert r.status_code in (404, 422), name
        assert b"SQLite format" not in r.content and b'"verdict"' not in r.content


# -- rate limits ------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    s = settings(tmp_path, analyze_rate_per_min=1.0, analyze_burst=2, read_rate_per_s=1.0,
                 read_burst=3)  # fmt: skip
    with TestClient(create_app(s)) as c:
        codes = [post_file(c, jpeg(i)).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        r = post_file(c, jpeg(9))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 30
        reads = [c.get("/v1/analyses").status_code for _ in range(5)]
        assert reads[:3] == [200] * 3 and reads[3:] == [429, 429]
        assert c.get("/v1/health").status_code == 200  # never limited
        assert "forenscope_rate_limited_total 4" in c.get("/v1/metrics").text


def test_overload_answers_503_with_retry_after(client: TestClient) -> None:
    analyzer = client.app.state.service.analyzer  # type: ignore[attr-defined]
    analyzer.gate.pending = analyzer.settings.max_pending  # as if the queue were full
    r = post_file(client, jpeg(7))
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    analyzer.gate.pending = 0
    assert post_file(client, jpeg(7)).status_code == 201


def test_token_bucket_refills_per_client() -> None:
    rl = RateLimiter(rate=2.0, burst=2)
    assert [rl.acquire("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert rl.acquire("a", now=0.0) == pytest.approx(0.5)
    assert rl.acquire("b", now=0.0) == 0.0  # another client has its own bucket
    assert rl.acquire("a", now=0.5) == 0.0  # refilled one token in 0.5 s
    assert RateLimiter(rate=0.0, burst=1).acquire("a") == 0.0  # disabled


# -- SSRF -------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    image = b""
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        port = self.server.server_address[1]
        if self.path == "/img.jpg":
            self._send(200, self.image, "image/jpeg")
        elif self.path.startswith("/hop/"):
            n = int(self.path.rsplit("/", 1)[1])
            self._redirect(f"http://127.0.0.1:{port}/hop/{n - 1}" if n else "/img.jpg")
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-v6-loopback":
            self._redirect(f"http://[::ffff:127.0.0.1]:{port}/img.jpg")
        elif self.path == "/huge":
            self._send(200, b"\xff\xd8\xff" + b"\0" * 300_000, "image/jpeg")
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def origin() -> Iterator[str]:
    _Handler.image = jpeg(4)
    _Handler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_to_loopback_or_metadata_is_refused_by_default(client: TestClient, origin: str) -> None:
    for url in (origin + "/img.jpg", "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/x.jpg", "http://[::ffff:127.0.0.1]/x.jpg", "http://2130706433/",
                "http://0.0.0.0/", "http://10.0.0.1/", "http://localhost/x.jpg"):  # fmt: skip
        r = client.post("/v1/analyze", json={"url": url})
        assert r.status_code == 400, (url, r.text)
        assert "refused" in r.json()["detail"]
    assert _Handler.hits == []  # not a single request reached the loopback server


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a.jpg",
                                 "gopher://x/", "http://user:pw@example.org/a.jpg"])  # fmt: skip
def test_only_plain_http_urls(client: TestClient, url: str) -> None:
    r = client.post("/v1/analyze", json={"url": url})
    assert r.status_code == 400
    assert any(w in r.json()["detail"] for w in ("only http and https", "credentials"))


def test_allowlisted_url_is_fetched_and_analysed(tmp_path: Path, origin: str) -> None:
    s = settings(tmp_path, fetch_allow_networks=["127.0.0.1/32"])
    with TestClient(create_app(s)) as c:
        r = c.post("/v1/analyze", json={"url": origin + "/hop/2"})  # 3 redirects: the maximum
        assert r.status_code == 201, r.text
        a = r.json()
        assert a["source"] == "url" and a["url"] == origin + "/img.jpg"
        assert a["filename"] == "img.jpg"
        # Redirects are re-checked: the allowlist for 127.0.0.1 does not open other addresses.
        for path in ("/to-metadata", "/to-v6-loopback"):
            r = c.post("/v1/analyze", json={"url": origin + path})
            assert r.status_code == 400 and "refused" in r.json()["detail"], path
        r = c.post("/v1/analyze", json={"url": origin + "/hop/3"})  # 4 > 3 redirects
        assert r.status_code == 400 and "redirects" in r.json()["detail"]
        assert c.post("/v1/analyze", json={"url": origin + "/missing"}).status_code == 502


def test_url_body_over_the_limit_is_413(tmp_path: Path, origin: str) -> None:
    s = settings(tmp_path, fetch_allow_networks=["127.0.0.1/32"], max_upload_bytes=100_000)
    with TestClient(create_app(s)) as c:
        r = c.post("/v1/analyze", json={"url": origin + "/huge"})
        assert r.status_code == 413


def test_fetch_checks_every_hop_directly(origin: str) -> None:
    policy = FetchPolicy.build(1_000_000, 5.0, 3, ["127.0.0.1/32"])
    data, final = fetch_image_bytes(origin + "/hop/2", policy)  # /hop/N = N + 1 redirects
    assert data == _Handler.image and final.endswith("/img.jpg")
    with pytest.raises(UrlRefusedError, match="more than 3 redirects"):
        fetch_image_bytes(origin + "/hop/3", policy)
    with pytest.raises(UrlRefusedError, match="169.254.169.254"):
        fetch_image_bytes(origin + "/to-metadata", policy)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("127.0.0.1", "loopback"), ("169.254.169.254", "private"), ("10.1.2.3", "private"),
     ("192.168.0.1", "private"), ("100.64.0.1", "private"), ("224.0.0.1", "multicast"),
     ("0.0.0.0", "private"), ("::1", "loopback"), ("fe80::1", "private"), ("fc00::1", "private"),
     ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "private"),
     ("2002:7f00:1::", "loopback"), ("240.0.0.1", "private"), ("ff02::1", "private")],
)  # fmt: skip
def test_forbidden_addresses(address: str, reason: str) -> None:
    got = forbidden_reason(ip_address(address))
    assert got is not None, address
    if reason == "loopback":
        assert got == "loopback"


def test_public_addresses_are_allowed() -> None:
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"):
        assert forbidden_reason(ip_address(address)) is None
