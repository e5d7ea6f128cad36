"""Every finding of the resource-exhaustion attack (issue 16), rerun against real processes.

    python benchmarks/bench_abuse.py [--slow-hosts 40] [--idle 300] [--large-clients 32]

Starts `forenscope serve` (hardened uvicorn config, default limits, analyses in two worker
processes; analysis rate limit off and 127.0.0.0/8 allowed for URL fetches, so the slow hosts
on loopback are really fetched), a second one with a token, and `forenscope serve-openai`, then
runs the CLI in subprocesses. Each row is one finding: PASS/FAIL, the latency that matters for
it and the peak RSS of the process under attack during that row (the process and its workers).
/v1/health is probed every 0.2 s from a process of its own. The hostile corpus comes from
tests/abuse_fixtures.py. Only 127.0.0.1 is contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import abuse_fixtures as fx  # noqa: E402

MB = 1024 * 1024
TOKEN = "bench-token-0123456789"


# --- processes and measurements ---------------------------------------------------------------


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Sampler:
    """Peak RSS of a process tree, sampled every 50 ms while a row runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb([self.pid, *fx.children_of(self.pid)]))
            time.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("the server did not start")


def serve(data_dir: Path, port: int, token: str | None) -> None:
    """The server process: what `forenscope serve` runs, with the bench's settings."""
    import uvicorn

    from forenscope.service import Settings, create_app
    from forenscope.service.launch import server_config

    s = Settings(data_dir=data_dir, port=port, token=token, analyze_rate_per_min=0.0,
                 fetch_allow_networks=["127.0.0.0/8"], isolation="process",
                 memory_budget_mb=1024)  # fmt: skip  # a 2 GB machine's default: the tightest
    config = server_config(
        create_app(s), header_timeout_s=s.header_timeout_s, keep_alive_s=s.keep_alive_s,
        trusted_proxies=s.trusted_proxies, host="127.0.0.1", port=port, log_level="error",
    )  # fmt: skip
    uvicorn.Server(config).run()


@contextmanager
def server(data_dir: Path, token: str | None = None) -> Iterator[Server]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(data_dir), "--port", str(port)]
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    proc = subprocess.Popen(cmd, env=env)
    try:
        startup = wait_port(port, proc)
        yield Server(proc, port, startup)
    finally:
        fx.stop_process(proc)


@dataclass
class Server:
    proc: subprocess.Popen[Any]
    port: int
    startup_s: float

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except OSError as exc:
            return 0, {}, type(exc).__name__.encode()
        finally:
            conn.close()

    def health(self) -> float:
        start = time.perf_counter()
        status, _, _ = self.request("GET", "/v1/health", timeout=10)
        return time.perf_counter() - start if status == 200 else float("inf")

    def upload(self, data: bytes, name: str = "a.png", **fields: str) -> tuple[int, Any]:
        boundary = "benchboundary7f3a"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                 + data + b"\r\n"]  # fmt: skip
        for key, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                         f"{value}\r\n".encode())  # fmt: skip
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        status, _, raw = self.request("POST", "/v1/analyze", body, ctype, timeout=300)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw[:200]


@dataclass
class Row:
    area: str
    finding: str
    ok: bool
    latency: str
    peak_mb: float
    detail: str


ROWS: list[Row] = []


def record(area: str, finding: str, ok: bool, latency: str, peak: float, detail: str) -> None:
    ROWS.append(Row(area, finding, ok, latency, peak, detail))
    print(f"  {'PASS' if ok else 'FAIL'}  {finding}: {detail}", flush=True)


PROBE = """
import http.client, sys, time
while True:
    t = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
        c.request("GET", "/v1/health")
        ok = c.getresponse().status == 200
        c.close()
    except OSError:
        ok = False
    print(f"{time.perf_counter() - t if ok else 99:.4f}", flush=True)
    time.sleep(0.2)
"""


@contextmanager
def health_probe(port: int) -> Iterator[list[float]]:
    """GET /v1/health every 0.2 s from a process of its own (the bench's threads would skew
    it); the latencies are in the list once the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", PROBE, str(port)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    out: list[float] = []
    try:
        yield out
    finally:
        proc.terminate()
        text, _ = proc.communicate(timeout=10)
        out.extend(float(x) for x in text.split())


# --- the service ------------------------------------------------------------------------------


def service_rows(args: argparse.Namespace, tmp: Path) -> None:
    with server(tmp / "data") as srv:
        pid = srv.proc.pid
        print(f"serve: listening after {srv.startup_s:.1f}s (imports done before the socket)")

        # High 1: slow URL hosts.
        with (
            fx.slow_servers("headers", interval_s=0.5, lifetime_s=60) as (slow,),
            Sampler(pid) as m,
            health_probe(srv.port) as lat,
        ):
            body = json.dumps({"url": slow.url}).encode()
            time.sleep(0.5)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.slow_hosts) as pool:
                res = list(pool.map(lambda _: srv.request(
                    "POST", "/v1/analyze", body, {"Content-Type": "application/json"}, 60),
                    range(args.slow_hosts)))  # fmt: skip
            took = time.perf_counter() - t0
        codes = sorted({r[0] for r in res})
        ok = max(lat) < 1.0 and set(codes) <= {502, 503} and took < 15
        record("serve", f"H1 {args.slow_hosts} slow URL hosts (headers trickled)", ok,
               f"all answered {took:.1f}s; health max {max(lat):.2f}s", m.peak,
               f"statuses {codes}")  # fmt: skip

        # Medium 5: slowloris.
        with Sampler(pid) as m, health_probe(srv.port) as lat:
            with fx.idle_connections(srv.port, args.idle) as socks:
                time.sleep(11.5)  # the header deadline is 10 s
                closed = sum(fx.closed_by_server(s, 0.05) for s in socks)
            time.sleep(0.5)
        record("serve", f"M5 {args.idle} idle half-sent requests", closed == args.idle
               and max(lat) < 1.0, f"health max {max(lat):.2f}s", m.peak,
               f"{closed}/{args.idle} closed by the server within 11.5s")  # fmt: skip

        # High 4: large uploads, bombs, the memory gate.
        big = fx.noise_png(6.3, seed=1)  # ~19 MB, ~6.3 MP
        fits = [fx.noise_png(1.0, seed=10 + i) for i in range(args.budget_clients)]
        with Sampler(pid) as m, health_probe(srv.port) as lat:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.large_clients + args.budget_clients) as pool:
                futs = [
                    pool.submit(srv.upload, big, f"big{i}.png") for i in range(args.large_clients)
                ]
                futs += [pool.submit(srv.upload, f, f"fit{i}.png") for i, f in enumerate(fits)]
                res = [f.result() for f in futs]
            took = time.perf_counter() - t0
        big_codes = sorted({r[0] for r in res[: args.large_clients]})
        fit_codes = sorted({r[0] for r in res[args.large_clients :]})
        ok = big_codes == [413] and fit_codes == [201] and m.peak <= 1536 and max(lat or [0]) < 1
        record("serve", f"H4 {args.large_clients} x {len(big) / MB:.0f} MB uploads + "
               f"{args.budget_clients} analyses within the budget", ok,
               f"{took:.1f}s; health max {max(lat or [0]):.2f}s", m.peak,
               f"19 MB: {big_codes} (over the 1 GB budget), 1 MP: {fit_codes}")  # fmt: skip
        bomb = fx.png_bomb(8000, 7400)
        with Sampler(pid) as m:
            t0 = time.perf_counter()
            status, answer = srv.upload(bomb, "bomb.png")
            took = time.perf_counter() - t0
        record("serve", "H4 59 MP PNG bomb (180 KB)", status == 413 and took < 2, f"{took:.2f}s",
               m.peak, f"HTTP {status}: {str(answer)[:70]}")  # fmt: skip

        # High 3 / Medium 8: expert lists.
        photo = fx.small_jpeg(7)
        with Sampler(pid) as m:
            t0 = time.perf_counter()
            s1, a1 = srv.upload(photo, "a.jpg", experts=",".join(["ela"] * 5000))
            s2, a2 = srv.upload(photo, "a.jpg", experts=",".join(["ela"] * 200))
            s3, a3 = srv.upload(photo, "a.jpg", experts=",")
            took = time.perf_counter() - t0
        one = s2 == 201 and [e["expert"] for e in a2["report"]["experts"]] == ["ela"]
        record("serve", "H3 experts=ela x5000 / x200", s1 == 400 and one, f"{took:.2f}s", m.peak,
               f"x5000 -> {s1}, x200 -> {s2} with one ela run")  # fmt: skip
        record("serve", "M8 empty expert list", s3 == 400, "-", m.peak,
               f"HTTP {s3}: {str(a3)[:60]}")  # fmt: skip

        # Medium 6: rejected jobs unstage.
        boundary = "jobboundary"
        body = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{n}"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n".encode()
                + d
                + b"\r\n"
                for n, d in (("ok.jpg", fx.small_jpeg(8)), ("bad.jpg", b"not an image"))
            )
            + f"--{boundary}--\r\n".encode()
        )
        status, _, _ = srv.request(
            "POST", "/v1/jobs", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        staged = [p for p in (tmp / "data" / "staging").iterdir() if not p.name.startswith(".")]
        record(
            "serve",
            "M6 rejected job leaves no staged upload",
            status == 415 and not staged,
            "-",
            rss_mb([pid]),
            f"HTTP {status}, {len(staged)} staged file(s) left",
        )

        # Medium 4: Host / Origin without a token.
        s_host = srv.request("GET", "/v1/analyses", headers={"Host": "rebound.example"})[0]
        s_origin = srv.request("POST", "/v1/analyze", b"{}", {
            "Content-Type": "application/json", "Origin": "http://evil.example"})[0]  # fmt: skip
        ok = s_host == 400 and s_origin == 403
        record("serve", "M4 DNS rebinding Host / cross-site POST", ok, "-", rss_mb([pid]),
               f"Host -> {s_host}, Origin -> {s_origin}")  # fmt: skip

        # Low 1, 3, 4, 7.
        s_off = srv.request("GET", f"/v1/analyses?offset={2**63}")[0]
        record("serve", "L1 offset=2^63", s_off == 400, "-", rss_mb([pid]), f"HTTP {s_off}")
        xff = [srv.request("GET", "/v1/analyses", headers={"X-Forwarded-For": f"10.0.{i // 250}"
                                                              f".{i % 250}"})[0]
               for i in range(600)]  # fmt: skip
        record(
            "serve",
            "L3 X-Forwarded-For rotation vs the read limit (300 + 50/s)",
            xff.count(429) >= 50,
            "-",
            rss_mb([pid]),
            f"{xff.count(429)} of 600 got 429",
        )
        fec0 = srv.request("POST", "/v1/analyze", b'{"url": "http://[fec0::1]/x.jpg"}',
                           {"Content-Type": "application/json"})[0]  # fmt: skip
        record("serve", "L4 SSRF to fec0::/10", fec0 == 400, "-", rss_mb([pid]), f"HTTP {fec0}")
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in
                 (tmp / "data", tmp / "data" / "forenscope.sqlite3")}  # fmt: skip
        previews = [oct(p.stat().st_mode & 0o777) for p in (tmp / "data").rglob("preview.jpg")]
        ok = list(modes.values()) == ["0o700", "0o600"] and set(previews) == {"0o600"}
        record("serve", "L7 data folder / database / previews private", ok, "-", rss_mb([pid]),
               f"{modes}, previews {sorted(set(previews))}")  # fmt: skip

        combined_row(args, srv, big)
        worker_kill_row(srv)

    with server(tmp / "data-token", token=TOKEN) as srv:
        wrong = {"Authorization": "Bearer guess"}
        codes = [srv.request("GET", "/v1/analyses", headers=wrong)[0] for _ in range(12)]
        good = srv.request("GET", "/v1/analyses", headers={"Authorization": f"Bearer {TOKEN}"})
        record("serve", "L3 failed token attempts throttled", codes[:10] == [401] * 10
               and codes[10:] == [429, 429] and good[0] == 429, "-", rss_mb([srv.proc.pid]),
               f"{codes.count(401)} x 401 then {codes.count(429)} x 429")  # fmt: skip

    # Medium 2: first requests racing the imports of a fresh process.
    failures = 0
    for attempt in range(args.fresh_starts):
        with server(tmp / f"fresh{attempt}") as srv:
            with ThreadPoolExecutor(8) as pool:
                res = list(pool.map(lambda i: srv.upload(fx.small_jpeg(100 + i), "f.jpg"),
                                    range(8)))  # fmt: skip
            failures += sum(s != 201 for s, _ in res)
    record("serve", f"M2 8 analyses at once on {args.fresh_starts} fresh starts", failures == 0,
           "-", 0.0, f"{failures} non-201 answers")  # fmt: skip

    kill9_row(args, tmp)


def combined_row(args: argparse.Namespace, srv: Server, big: bytes) -> None:
    """The issue's hostile load, all at once: slow URL hosts, idle half-sent requests and
    clients uploading 19 MB images; the server and its workers' peak RSS, /v1/health."""
    body = json.dumps({"url": "SLOW"})
    with (
        fx.slow_servers("headers", interval_s=0.5, lifetime_s=90) as (slow,),
        Sampler(srv.proc.pid) as m,
        health_probe(srv.port) as lat,
        fx.idle_connections(srv.port, args.idle),
    ):
        time.sleep(0.5)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.slow_hosts + args.large_clients) as pool:
            slow_res = [pool.submit(srv.request, "POST", "/v1/analyze",
                                    body.replace("SLOW", slow.url).encode(),
                                    {"Content-Type": "application/json"}, 60)
                        for _ in range(args.slow_hosts)]  # fmt: skip
            big_res = [pool.submit(srv.upload, big, f"c{i}.png") for i in range(args.large_clients)]
            slow_codes = sorted({f.result()[0] for f in slow_res})
            big_codes = sorted({f.result()[0] for f in big_res})
        took = time.perf_counter() - t0
        time.sleep(0.5)
    ok = (m.peak <= 1536 and max(lat) < 1.0 and set(slow_codes) <= {502, 503}
          and big_codes == [413])  # fmt: skip
    record("serve", f"combined: {args.slow_hosts} slow hosts + {args.idle} idle + "
           f"{args.large_clients} x {len(big) / MB:.0f} MB uploads at once", ok,
           f"{took:.1f}s; health max {max(lat):.2f}s over {len(lat)} probes", m.peak,
           f"slow hosts {slow_codes}, uploads {big_codes}")  # fmt: skip


def worker_kill_row(srv: Server) -> None:
    """An analysis worker SIGKILLed mid-image (as by the OOM killer): that request alone fails."""
    workers = fx.worker_children(srv.proc.pid)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(srv.upload, fx.noise_png(3.0, seed=77), "k.png")
        victim = fx.kill_the_busy_worker(workers, answer.done, wait_s=120)
        status, _ = answer.result()
    after, _ = srv.upload(fx.small_jpeg(78), "after.jpg")
    now = fx.worker_children(srv.proc.pid)
    ok = victim is not None and status == 503 and after == 201 and len(now) == len(workers)
    record("serve", "M3 an analysis worker SIGKILLed mid-image", ok, "-",
           rss_mb([srv.proc.pid, *now]),
           f"that request {status}, the next {after}; "
           f"{len(now)}/{len(workers)} workers")  # fmt: skip


def kill9_row(args: argparse.Namespace, tmp: Path) -> None:
    """32 clients; the server is killed with SIGKILL mid-load and restarted on the same data."""
    data = tmp / "kill9"
    images = [fx.small_jpeg(1000 + i, size=(192, 256)) for i in range(args.kill_clients * 3)]
    answered: list[str] = []
    interrupted = [0]
    lock = threading.Lock()
    done = [0]
    port_box: list[Server] = []

    def client(mine: list[bytes]) -> None:
        for img in mine:
            for _ in range(600):  # bounded: retry only while the server is down (not sent)
                srv = port_box[-1]
                try:
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=1):
                        pass
                except OSError:
                    time.sleep(0.1)
                    continue
                status, answer = srv.upload(img, "k.jpg")
                with lock:
                    if status == 201:
                        answered.append(answer["id"])
                    else:
                        interrupted[0] += 1  # cut by the kill: no answer, not retried
                    done[0] += 1
                break

    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(data), "--port", str(port)]
    proc = subprocess.Popen(cmd)
    wait_port(port, proc)
    port_box.append(Server(proc, port, 0))
    threads = [threading.Thread(target=client, args=(images[i :: args.kill_clients],))
               for i in range(args.kill_clients)]  # fmt: skip
    for t in threads:
        t.start()
    while done[0] < len(images) * 0.4:
        time.sleep(0.05)
    workers = fx.worker_children(proc.pid)
    proc.kill()  # SIGKILL mid-load
    proc.wait()
    gone_by = time.monotonic() + 10
    while time.monotonic() < gone_by and any(fx.alive(w) for w in workers):
        time.sleep(0.05)
    orphans = [w for w in workers if fx.alive(w)]
    for w in orphans:
        os.kill(w, signal.SIGKILL)
    proc = subprocess.Popen(cmd)
    wait_port(port, proc)
    port_box.append(Server(proc, port, 0))
    for t in threads:
        t.join(600)
    srv = port_box[-1]
    lost = sum(srv.request("GET", f"/v1/analyses/{i}")[0] != 200 for i in answered)
    _, _, raw = srv.request("GET", "/v1/analyses?limit=100")
    total = json.loads(raw)["total"]
    shas: list[str] = []
    for offset in range(0, total, 100):
        page = json.loads(srv.request("GET", f"/v1/analyses?limit=100&offset={offset}")[2])
        shas += [item["sha256"] for item in page["items"]]
    dupes = len(shas) - len(set(shas))
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    record("serve", f"kill -9 mid-load ({args.kill_clients} clients, {len(images)} images)",
           lost == 0 and dupes == 0 and bool(workers) and not orphans, "-", 0.0,
           f"{len(answered)} answered, {interrupted[0]} cut by the kill, {total} stored, "
           f"{lost} lost, {dupes} duplicated; {len(orphans)}/{len(workers)} workers "
           "outlived the server")  # fmt: skip


# --- serve-openai -----------------------------------------------------------------------------


@contextmanager
def openai_server(*flags: str) -> Iterator[Server]:
    """`forenscope serve-openai` (analyses in two worker processes, as by default) with ela,
    exif and noise; it prints READY once its workers are warm."""
    cmd = [sys.executable, "-m", "forenscope", "serve-openai", "--port", "0", "--expert", "ela",
           "--expert", "exif", "--expert", "noise", *flags]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip().split("=")[1])
        yield Server(proc, port, time.perf_counter() - t0)
    finally:
        fx.stop_process(proc)


def chat(srv: Server, body: bytes) -> tuple[int, dict[str, str], bytes]:
    ctype = {"Content-Type": "application/json"}
    return srv.request("POST", "/v1/chat/completions", body, ctype, 300)


def openai_error(raw: bytes) -> str:
    """The `code` of OpenAI's error JSON, or '?' when the body is not one."""
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


def openai_rows(args: argparse.Namespace) -> None:
    # a 2 GB machine's budget (the default is half the machine's memory), as for serve
    with openai_server("--memory-budget-mb", "1024", "--isolation", args.openai_isolation) as srv:
        proc = srv.proc

        def post(body: bytes) -> tuple[int, dict[str, str], bytes]:
            return chat(srv, body)

        s, _, raw = post(fx.nested_json(100_000))
        ok = s == 400 and "error" in json.loads(raw)
        s2, _, raw2 = post(fx.chat_json(fx.small_jpeg(1), response_format={
            "type": "json_schema", "json_schema": "not an object"}))  # fmt: skip
        ok2 = s2 == 400 and "error" in json.loads(raw2)
        record("openai", "L2 100k-deep JSON / non-object json_schema", ok and ok2, "-",
               rss_mb([proc.pid]), f"HTTP {s} / {s2}, OpenAI error JSON")  # fmt: skip
        # High 2: distinct images through the cache; Medium 7: a burst over the queue cap.
        distinct = [fx.chat_json(fx.noise_png(0.8, seed=200 + i)) for i in range(args.cache_images)]
        before = rss_mb([proc.pid])
        with Sampler(proc.pid) as m:
            for body in distinct:
                post(body)
        after = rss_mb([proc.pid])
        record(
            "openai",
            f"H2 cache after {args.cache_images} distinct 0.8 MP images",
            after - before < 300,
            "-",
            m.peak,
            f"server RSS {before:.0f} -> {after:.0f} MB (answers cached as JSON, 32 MB cap; "
            "peak: with the workers)",
        )
        big = fx.chat_json(fx.noise_png(4.8, seed=300))  # ~14 MB image, ~19 MB as base64 JSON
        with Sampler(proc.pid) as m:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.openai_clients) as pool:
                res = list(pool.map(lambda _: post(big), range(args.openai_clients)))
            took = time.perf_counter() - t0
        codes = {c: sum(r[0] == c for r in res) for c in sorted({r[0] for r in res})}
        retry = all("retry-after" in r[1] for r in res if r[0] == 503)
        ok = set(codes) <= {200, 413, 503} and codes.get(503, 0) > 0 and retry and m.peak < 1536
        record(
            "openai",
            f"M7 {args.openai_clients} concurrent {len(big) / MB:.0f} MB requests",
            ok,
            f"{took:.1f}s",
            m.peak,
            f"statuses {codes}, Retry-After on 503: {retry}",
        )
        s, _, raw = post(fx.chat_json(fx.png_bomb(8000, 7400)))
        record("openai", "H4 59 MP PNG bomb", s == 413, "-", rss_mb([proc.pid]), f"HTTP {s}")


def openai_worker_rows() -> None:
    """Analyses in worker processes: the per-image time limit (1 s here), a worker killed
    mid-image, and the workers of a killed server."""
    slow = fx.chat_json(fx.png_bomb(6000, 4000))  # 24 MP of black: 70 KB, seconds to analyse
    with openai_server("--analysis-timeout", "1", "--memory-budget-mb", "6144") as srv:
        pid = srv.proc.pid
        before = set(fx.settled_workers(pid, 2))
        with Sampler(pid) as m:
            t0 = time.perf_counter()
            s, _, raw = chat(srv, slow)
            took = time.perf_counter() - t0
            s2, _, _ = chat(srv, fx.chat_json(fx.small_jpeg(90)))
        after = set(fx.settled_workers(pid, 2))
        ok = s == 422 and openai_error(raw) == "analysis_timeout" and s2 == 200
        ok = ok and len(after) == 2 and len(before - after) == 1
        record("openai", "24 MP image past a 1 s analysis limit", ok, f"{took:.1f}s", m.peak,
               f"HTTP {s} {openai_error(raw)}, next request {s2}; "
               f"{len(before - after)} worker replaced, {len(after)} live")  # fmt: skip

        workers = list(after)
        with Sampler(pid) as m, ThreadPoolExecutor(1) as pool:
            answer = pool.submit(chat, srv, slow)
            victim = fx.kill_the_busy_worker(workers, answer.done)
            s, headers, raw = answer.result()
            s2, _, _ = chat(srv, fx.chat_json(fx.small_jpeg(91)))
        now = fx.settled_workers(pid, 2)
        ok = s == 503 and "retry-after" in headers and s2 == 200 and victim not in now
        record("openai", "M3 an analysis worker SIGKILLed mid-image", ok and len(now) == 2, "-",
               m.peak, f"that request {s} {openai_error(raw)}, the next {s2}; "
               f"{len(now)}/2 workers")  # fmt: skip

    with openai_server() as srv:
        t0 = time.perf_counter()
        workers, left = fx.kill_leaving_orphans(srv.proc)
        record("openai", "M3 serve-openai SIGKILLed: its workers", len(workers) == 2 and not left,
               f"{time.perf_counter() - t0:.2f}s", 0.0,
               f"{len(workers)} workers, {len(left)} left alive; ready after "
               f"{srv.startup_s:.1f}s (workers warm)")  # fmt: skip


# --- the CLI ----------------------------------------------------------------------------------


def cli(
    args: list[str], timeout: float = 300.0, env: dict[str, str] | None = None,
    on_start: Callable[[subprocess.Popen[str]], str] | None = None,
) -> tuple[int, str, float, float]:  # fmt: skip
    """(exit code, output, seconds, peak RSS of the CLI and its workers). `on_start` may read
    the first lines itself; it returns them."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "forenscope", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})  # fmt: skip
    with Sampler(proc.pid) as m:
        head = on_start(proc) if on_start is not None else ""
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            return -9, head + out + "\n[timed out]", time.perf_counter() - t0, m.peak
    return proc.returncode, head + out, time.perf_counter() - t0, m.peak


def photo(path: Path, seed: int, size: tuple[int, int] = (480, 640)) -> Path:
    path.write_bytes(fx.small_jpeg(seed, size=size))
    return path


def cli_rows(tmp: Path) -> None:
    folder = tmp / "cli"
    folder.mkdir()
    good = photo(folder / "good.jpg", 1)
    specials = [
        fx.write_fifo(folder),
        fx.link_dev_zero(folder),
        fx.write_sparse(folder, 40 * 1024**3),
    ]
    code, out, took, peak = cli(
        ["analyze", *map(str, specials), str(good), "--experts", "exif,ela"]
    )
    ok = code == 3 and "good.jpg: " in out and out.count("not a regular file") == 2 and took < 60
    record("cli", "M1 FIFO, /dev/zero, 40 GB sparse file + one photo", ok, f"{took:.1f}s", peak,
           f"exit {code}; the photo analysed, three clear errors")  # fmt: skip

    code, out, took, peak = cli(["analyze", str(good), "--experts", ","])
    record("cli", "M8 --experts ','", code == 2 and "empty" in out, f"{took:.1f}s", peak,
           f"exit {code}")  # fmt: skip

    bomb = folder / "bomb96.png"
    bomb.write_bytes(fx.png_bomb(12000, 8000))  # 96 MP
    code, out, took, peak = cli(["analyze", str(bomb)])
    ok = code == 3 and "memory budget" in out and took < 30
    record("cli", "H4 96 MP PNG (default budget: half the RAM)", ok, f"{took:.1f}s", peak,
           f"exit {code}")  # fmt: skip

    text = folder / "ztxt.png"
    text.write_bytes(fx.png_with_text_chunk(2 * MB))
    code, out, took, peak = cli(["analyze", str(text), "--experts", "exif,generator_metadata"])
    record("cli", "L5 PNG with a 2 MB zTXt chunk", code in (0, 1, 4), f"{took:.1f}s", peak,
           f"exit {code} (analysed, chunk skipped with a note)")  # fmt: skip

    ansi = photo(folder / fx.ANSI_NAME, 2)
    code, out, took, peak = cli(["analyze", str(ansi), "--experts", "exif"])
    record("cli", "L6 ANSI escapes in a file name", "\x1b" not in out and "\\x1b" in out,
           f"{took:.1f}s", peak, "escaped, not obeyed")  # fmt: skip

    batch = tmp / "batch"
    batch.mkdir()
    for i in range(12):
        photo(batch / f"img{i:02d}.jpg", 10 + i, size=(768, 1024))

    def kill_one_worker(proc: subprocess.Popen[str]) -> str:
        """After the first result both workers are busy: SIGKILL one, as the OOM killer would."""
        assert proc.stdout is not None
        head = proc.stdout.readline()
        workers = fx.worker_children(proc.pid)
        if workers:
            os.kill(workers[0], signal.SIGKILL)
        return head

    code, out, took, peak = cli(["analyze", str(batch), "-j", "2", "--experts", "ela,noise,exif"],
                                on_start=kill_one_worker)  # fmt: skip
    errors = out.count(": ERROR:")
    reported = len(set(re.findall(r"img\d\d\.jpg: ", out)))
    record(
        "cli",
        "M3 -j 2, one worker SIGKILLed",
        errors <= 1 and reported == 12,
        f"{took:.1f}s",
        peak,
        f"{reported} of 12 reported, {errors} error(s); exit {code}",
    )

    # Workers die with a killed parent.
    proc = subprocess.Popen([sys.executable, "-m", "forenscope", "analyze", str(batch), "-j", "2",
                             "--experts", "ela,noise"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:
        workers = fx.worker_children(proc.pid)
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 10 and any(fx.alive(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if fx.alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    record("cli", "M3 CLI parent SIGKILLed: its workers", bool(workers) and not left,
           f"{time.perf_counter() - t0:.2f}s", 0.0,
           f"{len(workers)} workers, {len(left)} left alive")  # fmt: skip


# --- report -----------------------------------------------------------------------------------


def table() -> str:
    lines = ["| area | finding | result | latency | peak RSS (MB) | detail |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in ROWS:
        peak = f"{r.peak_mb:.0f}" if r.peak_mb else "-"
        lines.append(f"| {r.area} | {r.finding} | {'PASS' if r.ok else 'FAIL'} | {r.latency} | "
                     f"{peak} | {r.detail.replace('|', '/')} |")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slow-hosts", type=int, default=40)
    p.add_argument("--idle", type=int, default=300)
    p.add_argument("--large-clients", type=int, default=32, help="19 MB uploads at once")
    p.add_argument("--budget-clients", type=int, default=4, help="1 MP analyses at once")
    p.add_argument("--openai-clients", type=int, default=32)
    p.add_argument(
        "--openai-isolation",
        choices=["process", "thread"],
        default="process",
        help="serve-openai's --isolation for the openai rows (thread: no worker rows)",
    )
    p.add_argument("--cache-images", type=int, default=12)
    p.add_argument("--kill-clients", type=int, default=32)
    p.add_argument("--fresh-starts", type=int, default=2)
    p.add_argument("--only", choices=["serve", "openai", "cli"], default=None)
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        serve(args.serve, args.port, os.environ.get("BENCH_TOKEN") or None)
        return 0
    if not sys.platform.startswith("linux"):
        print("bench_abuse needs Linux (/proc, FIFOs, PR_SET_PDEATHSIG)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "serve"):
            service_rows(args, Path(tmp))
        if args.only in (None, "openai"):
            openai_rows(args)
            if args.openai_isolation == "process":
                openai_worker_rows()
        if args.only in (None, "cli"):
            cli_rows(Path(tmp))
    failed = sum(not r.ok for r in ROWS)
    print(f"\nForenscope abuse benchmark ({os.cpu_count()} CPUs): {len(ROWS) - failed} pass, "
          f"{failed} fail\n")  # fmt: skip
    print(table())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
