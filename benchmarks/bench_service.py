"""Load test of the HTTP service on loopback: 32 concurrent clients, and a restart mid-load.

    python benchmarks/bench_service.py [--clients 32] [--per-client 5] [--size 384]

The server runs in a subprocess (uvicorn, default experts, 2 analysis worker processes as
`forenscope serve` runs them, or `--isolation thread`, rate limits off).
Every client uploads distinct JPEGs (no report cache hits) through POST /v1/analyze. When
`--restart-at` of the requests have finished, the server gets SIGTERM (uvicorn finishes the
requests in flight, then exits) and a new process starts on the same port and data directory.
Clients retry only when they could not connect (the server was down); any other failure, or a
request still failing after the retry budget, is an error. At the end every analysis id that was
answered with 201 is fetched from the new process: one that is missing is a lost analysis.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image


def serve(data_dir: Path, port: int, workers: int, isolation: str) -> None:
    import uvicorn

    from forenscope.service import Settings, create_app

    settings = Settings(
        data_dir=data_dir,
        port=port,
        workers=workers,
        analyze_rate_per_min=0,
        read_rate_per_s=0,
        isolation=isolation,
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                timeout_graceful_shutdown=60)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, port: int, workers: int, isolation: str
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", str(data_dir), "--port", str(port),
           "--workers", str(workers), "--isolation", isolation]  # fmt: skip
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 180  # the workers load their models before the port opens
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start")


def make_jpeg(seed: int, size: int) -> bytes:
    from forenscope.forgeries import synthetic_photo

    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(size, size * 4 // 3, seed=seed)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    resets: int = 0
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(base: str, images: list[bytes], tally: Tally, retry_budget_s: float) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=300) as http:
        for data in images:
            start = time.perf_counter()
            give_up = time.monotonic() + retry_budget_s
            while True:
                try:
                    r = http.post("/v1/analyze", files={"file": ("b.jpg", data, "image/jpeg")})
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    # ConnectError: the server is down (restart). ReadError/RemoteProtocolError:
                    # an idle keep-alive connection the stopping server closed as the request
                    # went out; uvicorn finishes every request it has read before exiting, so
                    # these were not processed and a retry cannot lose one.
                    if time.monotonic() > give_up:
                        with tally.lock:
                            tally.errors.append(type(exc).__name__)
                        break
                    with tally.lock:
                        if isinstance(exc, httpx.ConnectError):
                            tally.retries += 1
                        else:
                            tally.resets += 1
                    time.sleep(0.1)
                    continue
                except httpx.HTTPError as exc:
                    with tally.lock:
                        tally.errors.append(type(exc).__name__)
                    break
                with tally.lock:
                    if r.status_code == 201:
                        tally.latencies.append(time.perf_counter() - start)
                        tally.ids.append(r.json()["id"])
                    else:
                        tally.errors.append(f"HTTP {r.status_code}")
                break
            with tally.lock:
                tally.finished += 1


def nan(x: float) -> bool:
    return x != x


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> int:
    import httpx

    total = args.clients * args.per_client
    print(f"preparing {total} distinct {args.size * 4 // 3}x{args.size} JPEGs ...", flush=True)
    images = [make_jpeg(i, args.size) for i in range(total)]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(data_dir, port, args.workers, args.isolation)
        tally = Tally()
        threads = [
            threading.Thread(target=client, args=(base, images[i :: args.clients], tally, 60.0))
            for i in range(args.clients)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        drain_s = start_s = float("nan")
        while args.restart_at > 0 and tally.finished < total * args.restart_at:
            time.sleep(0.05)
        if args.restart_at > 0:
            r0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)  # graceful: in-flight requests complete
            proc.wait(120)
            r1 = time.perf_counter()
            proc = start_server(data_dir, port, args.workers, args.isolation)
            drain_s, start_s = r1 - r0, time.perf_counter() - r1
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        with httpx.Client(base_url=base, timeout=60) as http:
            lost = sum(http.get(f"/v1/analyses/{i}").status_code != 200 for i in tally.ids)
            stored = http.get("/v1/analyses", params={"limit": 1}).json()["total"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    lat = tally.latencies
    rows = [
        ("clients", f"{args.clients}"),
        ("requests", f"{total}"),
        ("answered 201", f"{len(tally.ids)}"),
        ("errors", f"{len(tally.errors)} {sorted(set(tally.errors)) if tally.errors else ''}"),
        ("connect retries while the server was down", f"{tally.retries}"),
        ("retries after a closed keep-alive connection", f"{tally.resets}"),
        ("latency p50 / p95 / max (s)",
         f"{pct(lat, 0.5):.2f} / {pct(lat, 0.95):.2f} / {max(lat):.2f}" if lat else "-"),
        ("latency mean (s)", f"{statistics.mean(lat):.2f}" if lat else "-"),
        ("throughput (analyses/s)", f"{len(lat) / wall:.2f}"),
        ("wall time (s)", f"{wall:.1f}"),
        ("restart: drain in-flight after SIGTERM (s)", "-" if nan(drain_s) else f"{drain_s:.1f}"),
        ("restart: new process listening (s)", "-" if nan(start_s) else f"{start_s:.1f}"),
        ("analyses stored after restart", f"{stored}"),
        ("lost analyses (201 but missing after restart)", f"{lost}"),
        ("duplicates (stored - answered)", f"{stored - len(tally.ids)}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print(f"\nForenscope service load test ({os.cpu_count()} CPUs, {args.workers} workers, "
          f"image {args.size * 4 // 3}x{args.size}, restart at {args.restart_at:.0%})")  # fmt: skip
    print(f"| {'metric'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")
    return 0 if not tally.errors and lost == 0 and stored >= len(tally.ids) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--per-client", type=int, default=5)
    p.add_argument("--size", type=int, default=384, help="image height in pixels (width 4/3)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--isolation",
        choices=["process", "thread"],
        default="process",  # fmt: skip
        help="analyses in worker processes (as `forenscope serve`), or threads",
    )
    p.add_argument("--restart-at", type=float, default=0.4, help="share done; 0 = no restart")
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        serve(args.serve, args.port, args.workers, args.isolation)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
