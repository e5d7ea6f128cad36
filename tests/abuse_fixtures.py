"""A hostile-input corpus: what an attacker or a flaky machine sends Forenscope.

Every generator is deterministic and small on disk (the bombs are a few hundred KB that claim
tens of megapixels). Used by tests/test_abuse_*.py and benchmarks/bench_abuse.py. Servers here
listen on 127.0.0.1 only and stop by themselves after `lifetime_s`.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# --- images ---------------------------------------------------------------------------------


def small_jpeg(seed: int = 0, size: tuple[int, int] = (96, 128), quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = size
    base = np.linspace(40, 200, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    arr = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@lru_cache(maxsize=4)
def png_bomb(width: int, height: int) -> bytes:
    """A real, decodable all-black RGB PNG: `width` x `height` pixels in a few hundred KB
    (59 MP is ~180 KB). Decoding it would need width * height * 3 bytes and more."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    parts = []
    block = 256
    for start in range(0, height, block):
        parts.append(comp.compress(row * min(block, height - start)))
    parts.append(comp.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def png_with_text_chunk(
    inflated_bytes: int, key: bytes = b"parameters", kind: bytes = b"zTXt"
) -> bytes:
    """A small valid PNG carrying one compressed text chunk that inflates to `inflated_bytes`
    (Pillow refuses the whole image past 1 MB)."""
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 48, 3), 120, np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    text = zlib.compress(b"a" * inflated_bytes, 9)
    if kind == b"zTXt":
        body = key + b"\0\0" + text
    else:  # iTXt, compressed
        body = key + b"\0\x01\0" + b"en\0\0" + text
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + _chunk(kind, body) + png[iend:]


def noise_png(megapixels: float, seed: int = 0) -> bytes:
    """An incompressible PNG (random pixels): its size in MB is about 3x its megapixels."""
    side = int((megapixels * 1e6 / 1.5) ** 0.5)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (side, int(side * 1.5), 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


# --- JSON -------------------------------------------------------------------------------------


def nested_json(depth: int) -> bytes:
    """`depth` nested arrays: json.loads raises RecursionError, not ValueError."""
    return b"[" * depth + b"]" * depth


def chat_body(image: bytes, **extra: object) -> dict[str, object]:
    import base64

    url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    content = [{"type": "text", "text": "Is this image real?"},
               {"type": "image_url", "image_url": {"url": url}}]  # fmt: skip
    return {"model": "forenscope", "messages": [{"role": "user", "content": content}], **extra}


def chat_json(image: bytes, **extra: object) -> bytes:
    return json.dumps(chat_body(image, **extra)).encode()


# --- special files ------------------------------------------------------------------------


def write_fifo(folder: Path, name: str = "pipe.jpg") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def write_sparse(folder: Path, size: int, name: str = "huge.jpg") -> Path:
    """A file of `size` bytes that takes no disk space (starts like a JPEG)."""
    path = folder / name
    with path.open("wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0")
        fh.truncate(size)
    return path


def link_dev_zero(folder: Path, name: str = "zero.jpg") -> Path:
    path = folder / name
    path.symlink_to("/dev/zero")
    return path


ANSI_NAME = "clean\x1b[2K\x1b[1A\x1b[31mFAKE.jpg"


# --- slow servers and clients -------------------------------------------------------------


class SlowServer:
    """An HTTP server on 127.0.0.1 that answers as slowly as an attacker would.

    mode: "status"  trickles the status line, one byte per `interval_s`;
          "headers" sends the status line, then trickles header bytes;
          "body"    sends headers with a small Content-Length, then trickles the body;
          "silent"  accepts and says nothing.
    Each connection is served on its own thread, and everything stops after `lifetime_s`.
    """

    def __init__(self, mode: str, interval_s: float = 0.2, lifetime_s: float = 60.0) -> None:
        self.mode = mode
        self.interval_s = interval_s
        self.stop_at = time.monotonic() + lifetime_s
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/img.jpg"

    def _serve(self) -> None:
        while time.monotonic() < self.stop_at:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        self.sock.close()

    def _answer(self, conn: socket.socket) -> None:
        status = b"HTTP/1.1 200 OK\r\n"
        headers = b"Content-Type: image/jpeg\r\n" + b"X-Pad: " + b"a" * 10_000 + b"\r\n"
        if self.mode == "status":
            plan = [status + headers]
        elif self.mode == "headers":
            conn.sendall(status)
            plan = [headers]
        elif self.mode == "body":
            conn.sendall(status + b"Content-Length: 100000\r\n\r\n")
            plan = [b"\xff\xd8\xff" + b"\0" * 99_997]
        else:
            plan = []
        try:
            conn.settimeout(1.0)
            for blob in plan:
                for i in range(len(blob)):
                    if time.monotonic() > self.stop_at:
                        return
                    conn.sendall(blob[i : i + 1])
                    time.sleep(self.interval_s)
            while time.monotonic() < self.stop_at:
                time.sleep(0.1)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop_at = 0.0
        self._thread.join(2.0)


@contextmanager
def slow_servers(mode: str, n: int = 1, **kw: float) -> Iterator[list[SlowServer]]:
    servers = [SlowServer(mode, **kw) for _ in range(n)]
    try:
        yield servers
    finally:
        for s in servers:
            s.close()


@contextmanager
def idle_connections(
    port: int, n: int, partial: bytes = b"GET / HTTP/1.1\r\nHost: 127"
) -> Iterator[list[socket.socket]]:
    """`n` connections that send half a request line and then nothing (slowloris)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(partial)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def closed_by_server(sock: socket.socket, wait_s: float) -> bool:
    """Whether the server closed `sock` within `wait_s` seconds."""
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


# --- worker processes -----------------------------------------------------------------------


def pool_task(key: str, seconds: float) -> str:
    """A task for WorkerPool tests: "kill" dies as the OOM killer would make it; others sleep."""
    if key.startswith("kill"):
        os.kill(os.getpid(), 9)
    time.sleep(seconds)
    return key


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def worker_children(pid: int) -> list[int]:
    """The worker processes of `pid`: its children but multiprocessing's resource tracker."""
    out = []
    for child in children_of(pid):
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            continue
    return out


def stop_process(proc: subprocess.Popen[Any], wait_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if `proc` has not exited within `wait_s`."""
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_leaving_orphans(
    proc: subprocess.Popen[Any], wait_s: float = 10
) -> tuple[list[int], list[int]]:
    """SIGKILL `proc` (no clean-up of its own can run) and give its workers `wait_s` to die
    with it: (its workers, those still alive then). The survivors are killed afterwards."""
    workers = worker_children(proc.pid)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if alive(w)]
    for w in left:
        os.kill(w, 9)
    return workers, left


def settled_workers(parent: int, count: int, wait_s: float = 60) -> list[int]:
    """The worker processes of `parent` once `count` are up and idle: a replacement started
    after a failure first loads its models, using CPU as an analysis would."""
    deadline = time.monotonic() + wait_s
    while len(now := worker_children(parent)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    ticks: dict[int, int] = {}
    while time.monotonic() < deadline:
        seen = {w: cpu_ticks(w) for w in now}
        if seen == ticks:
            break
        ticks = seen
        time.sleep(0.3)
    return now


def cpu_ticks(pid: int) -> int:
    """CPU time (user + system, in clock ticks) a process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def kill_the_busy_worker(
    workers: list[int], done: Callable[[], bool], wait_s: float = 60
) -> int | None:
    """SIGKILL (as the OOM killer would) the first of `workers` seen working: idle, a worker
    uses no CPU, so 5 ticks means it is mid-task. None if `done()` came first."""
    start = {w: cpu_ticks(w) for w in workers}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not done():
        busy = next((w for w in workers if cpu_ticks(w) - start[w] >= 5), None)
        if busy is not None:
            os.kill(busy, 9)
            return busy
        time.sleep(0.01)
    return None
