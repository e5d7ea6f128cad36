"""A fault-injecting fake OpenAI-compatible vision endpoint on the standard library.

For tests and benchmarks: `python -m forenscope.mllm.fake_server --port 0` prints
`READY port=N`; `FakeServerProcess(*args)` starts it in a subprocess and reads that line.
Answers are a deterministic function of the image: P(yes) = mean brightness, so bright images
are "fake". Faults (429 with Retry-After, 500, garbage bodies, refusals, empty or truncated
answers, delays, hangs) are injected at seeded random rates (`--faults 429:0.1,...`) or in a
fixed order for the first requests (`--script 429,500`). The rates are drawn in the order the
requests arrive, unless `--faults-per-request` draws each from the request itself (its bytes and
how often they came before), so concurrent clients meet the same faults on every run.
GET /stats counts hits.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "garbage", "refusal", "empty", "truncated", "delay", "hang", "fenced")
REFUSAL = "I'm sorry, but I can't help with identifying whether this image has been manipulated."
_GRID = ("upper", "middle", "lower"), ("left", "centre", "right")


def _last_user(body: dict[str, Any]) -> tuple[str, bytes]:
    """Text and image bytes of the last user message."""
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") != "user":
            continue
        text, img = "", b""
        content = msg.get("content")
        for part in content if isinstance(content, list) else [{"type": "text", "text": content}]:
            if part.get("type") == "text":
                text += str(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = str(part["image_url"]["url"])
                img = base64.b64decode(url.split(",", 1)[1]) if "," in url else b""
        return text, img
    return "", b""


def _image_count(body: dict[str, Any]) -> int:
    return sum(
        1
        for msg in body.get("messages") or []
        if isinstance(msg.get("content"), list)
        for part in msg["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


_COLLAGE = re.compile(r"collage of (\d+) panels.*?(\d+) per row", re.DOTALL)


def _last_panel(text: str, img: bytes) -> bytes:
    """The query panel of a collage the prompt describes (`mllm/collage.py`), else the image:
    a single-image model told the layout looks at the panel it is asked about."""
    found = _COLLAGE.search(text)
    if not found or not img:
        return img
    from PIL import Image

    n, cols = int(found.group(1)), int(found.group(2))
    rows = -(-n // cols)
    with Image.open(io.BytesIO(img)) as im:
        tile_w, tile_h = im.width // cols, im.height // rows
        x0, y0 = ((n - 1) % cols) * tile_w, ((n - 1) // cols) * tile_h
        # the central 60% of the square tile: clear of the grey letterbox and the number
        box = (x0 + tile_w // 5, y0 + tile_h // 5, x0 + 4 * tile_w // 5, y0 + 4 * tile_h // 5)
        buf = io.BytesIO()
        im.convert("RGB").crop(box).save(buf, "PNG")
    return buf.getvalue()


def _look(img: bytes) -> tuple[float, int, int]:
    """(P(yes) from brightness, row and column of the brightest cell of a 3x3 grid)."""
    if not img:
        return 0.5, 1, 1
    from PIL import Image, ImageStat

    im = Image.open(io.BytesIO(img)).convert("L")
    p = min(0.97, max(0.03, ImageStat.Stat(im).mean[0] / 255.0))
    w, h = im.size
    cells = [
        (
            ImageStat.Stat(
                im.crop((c * w // 3, r * h // 3, (c + 1) * w // 3, (r + 1) * h // 3))
            ).mean[0],
            r,
            c,
        )
        for r in range(3)
        for c in range(3)
    ]
    _, row, col = max(cells)
    return p, row, col


def _analysis(p: float, row: int, col: int, text: str) -> str:
    words = f"{_GRID[0][row]} {_GRID[1][col]}"
    return json.dumps(
        {
            "location": {
                "relative": f"the brightest area, {words}",
                "absolute": f"{words} of the frame",
                "box": [col / 3, row / 3, (col + 1) / 3, (row + 1) / 3],
            },
            "forged_content": "an over-bright patch",
            "visible_traces": ["unnaturally uniform brightness", "soft edges"],
            "method": "diffusion" if p >= 0.5 else "unknown",
            "scope": "local",
            "reasoning": f"Brightness {p:.2f} is above what this fake model expects of photos.",
            "cited_evidence": ["E1"] if "[E1]" in text else [],
        }
    )


def _logprobs(answer: str, p: float) -> dict[str, Any]:
    top = [("Yes", 0.95 * p), ("No", 0.95 * (1 - p)), (" yes", 0.03 * p), ("I", 0.02)]
    top.sort(key=lambda t: -t[1])
    lp = dict(top)
    return {
        "content": [
            {
                "token": answer,
                "logprob": math.log(lp.get(answer, 0.02)),
                "bytes": list(answer.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": math.log(q), "bytes": list(t.encode())} for t, q in top
                ],
            }
        ]
    }


def _tool_call_choice(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Call the first two offered tools, as a model exploring the experts would."""
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": t["function"]["name"], "arguments": "{}"},
        }
        for i, t in enumerate(tools[:2])
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    return {"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}


class FakeState:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.script: list[str] = [s for s in str(args.script).split(",") if s]
        self.rates: dict[str, float] = {
            k: float(v) for k, v in (f.split(":") for f in args.faults.split(",") if f)
        }
        unknown = set(self.rates) | set(self.script)
        if unknown - set(FAULTS) - {"ok"}:
            raise SystemExit(f"unknown faults: {sorted(unknown - set(FAULTS))}")
        self.hits = 0
        self.outcomes: dict[str, int] = {}
        self.seen: dict[str, int] = {}  # request digest -> times seen (--faults-per-request)

    def next_fault(self, request: bytes = b"") -> str:
        with self.lock:
            self.hits += 1
            if self.script:
                fault = self.script.pop(0)
            else:
                fault, x = "ok", self._draw(request)
                for name, rate in self.rates.items():
                    if x < rate:
                        fault = name
                        break
                    x -= rate
            self.outcomes[fault] = self.outcomes.get(fault, 0) + 1
            return fault

    def _draw(self, request: bytes) -> float:
        """The next seeded draw, or with --faults-per-request one fixed by the request's bytes
        and its repeat count (a retry draws anew), whatever order requests arrive in."""
        if not self.args.faults_per_request:
            return self.rng.random()
        digest = hashlib.sha256(request).hexdigest()
        repeat = self.seen.get(digest, 0)
        self.seen[digest] = repeat + 1
        return random.Random(f"{self.args.seed}:{digest}:{repeat}").random()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections at concurrency 64


class Handler(BaseHTTPRequestHandler):
    server_version = "forenscope-fake/1"
    state: FakeState

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        s = self.state
        if self.path.rstrip("/") == "/stats":
            self._send(200, json.dumps({"hits": s.hits, "outcomes": s.outcomes}).encode())
        elif self.path.rstrip("/") == "/v1/models":
            self._send(
                200,
                json.dumps(
                    {"object": "list", "data": [{"id": "fake-vision", "object": "model"}]}
                ).encode(),
            )
        else:
            self._send(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = json.loads(raw or b"{}")
        fault = self.state.next_fault(raw)
        args = self.state.args
        if args.max_images and _image_count(body) > args.max_images:
            # as Ollama answers a single-image vision model (e.g. llama3.2-vision)
            msg = "this model only supports one image while more than one image requested"
            err = {"error": {"message": msg, "type": "invalid_request_error"}}
            return self._send(400, json.dumps(err).encode())
        if fault == "429":
            err = {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
            return self._send(429, json.dumps(err).encode(), {"Retry-After": args.retry_after})
        if fault == "500":
            err = {"error": {"message": "internal error", "type": "server_error"}}
            return self._send(500, json.dumps(err).encode())
        if fault == "garbage":
            return self._send(200, b"<html><body>502 Bad Gateway</body></html>")
        if fault in ("delay", "hang"):
            time.sleep(args.delay if fault == "delay" else args.hang)
        self._send(200, json.dumps(self._completion(body, fault)).encode())

    def _completion(self, body: dict[str, Any], fault: str) -> dict[str, Any]:
        text, img = _last_user(body)
        p, row, col = _look(_last_panel(text, img))
        stage2 = "response_format" in body or "JSON object" in text
        judged = None
        if "outlined in" in text:  # a position judge's question (mllm/judge.py)
            from .fake_judge import judge_answer

            judged = judge_answer(text, img)
        n = 1 if self.state.args.ignore_n else int(body.get("n") or 1)
        tools = body.get("tools") or []
        if tools and not any(m.get("role") == "tool" for m in body.get("messages", [])):
            return self._wrap(body, [_tool_call_choice(tools)])
        choices = []
        for i in range(n):
            finish = "stop"
            if fault == "refusal":
                answer = REFUSAL
            elif fault == "empty":
                answer = ""
            elif judged is not None:
                answer = judged
            elif stage2:
                answer = _analysis(p, row, col, text)
                if fault == "fenced":
                    answer = f"Here is my analysis:\n```json\n{answer}\n```\nHope this helps."
                if fault == "truncated":
                    answer, finish = answer[: len(answer) // 2], "length"
            elif float(body.get("temperature") or 0) > 0:
                rng = random.Random(f"{img[:64]!r}:{len(img)}:{body.get('seed')}:{i}")
                answer = "Yes" if rng.random() < p else "No"
            else:
                answer = "Yes" if p >= 0.5 else "No"
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish,
                "logprobs": None,
            }
            if body.get("logprobs") and not self.state.args.no_logprobs and not stage2 and answer:
                choice["logprobs"] = _logprobs(answer.split()[0] if answer else "", p)
            choices.append(choice)
        return self._wrap(body, choices)

    def _wrap(self, body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
        prompt_tokens = len(json.dumps(body.get("messages", ""))) // 400 + 85
        completion_tokens = sum(len(c["message"]["content"] or "") // 4 + 1 for c in choices)
        return {
            "id": f"chatcmpl-fake{self.state.hits}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-vision"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class FakeServerProcess:
    """This server in a subprocess on a free loopback port (`args` are its CLI options)."""

    def __init__(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "forenscope.mllm.fake_server", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY port="):
            self.proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.strip().split("=")[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as r:
            return dict(json.load(r))

    def hits(self) -> int:
        return int(self.stats()["hits"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--faults", default="", help="e.g. 429:0.1,500:0.05,refusal:0.05")
    ap.add_argument("--script", default="", help="faults for the first requests, e.g. 429,500")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--faults-per-request",
        action="store_true",
        help="draw each request's fault from its own bytes, not from the arrival order",
    )
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--hang", type=float, default=5.0)
    ap.add_argument("--retry-after", default="0")
    ap.add_argument("--no-logprobs", action="store_true")
    ap.add_argument("--ignore-n", action="store_true", help="one choice whatever n asks (Ollama)")
    ap.add_argument("--max-images", type=int, default=0,
                    help="refuse requests with more images (1 = a single-image model)")  # fmt: skip
    args = ap.parse_args(argv)
    handler = type("BoundHandler", (Handler,), {"state": FakeState(args)})
    server = _Server((args.host, args.port), handler)
    print(f"READY port={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
