"""`forenscope serve-openai` runs its analyses in worker processes, as `forenscope serve` does
(issue 16): an image past the per-image time limit gets OpenAI's error JSON and its worker is
replaced; a worker killed mid-image (as by the OOM killer) costs that request alone; the
workers die with the server. A real `serve-openai` process, httpx as the client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import abuse_fixtures as fx

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")

TIMEOUT_S = 1.0  # ela + noise on the 24 MP picture below take about 4 s on a 2-core machine
SLOW = fx.png_bomb(6000, 4000)  # 24 MP of black in 70 KB: decodes, then takes seconds
EXPERTS = ("ela", "noise")


class OpenAIProcess:
    """`python -m forenscope serve-openai` on a free port, two workers, a 1 s time limit."""

    def __init__(self) -> None:
        args = [a for e in EXPERTS for a in ("--expert", e)]
        cmd = [sys.executable, "-m", "forenscope", "serve-openai", "--port", "0", *args,
               "--analysis-timeout", str(TIMEOUT_S), "--memory-budget-mb", "6144"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("FORENSCOPE_TOKEN", None)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the workers are warm
        assert line.startswith("READY port="), line
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{int(line.strip().split('=')[1])}", timeout=60.0
        )

    def ask(self, image: bytes) -> httpx.Response:
        return self.http.post("/v1/chat/completions", content=fx.chat_json(image),
                              headers={"Content-Type": "application/json"})  # fmt: skip

    def workers(self) -> list[int]:
        return fx.worker_children(self.proc.pid)

    def close(self) -> None:
        self.http.close()
        fx.stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIProcess]:
    srv = OpenAIProcess()
    yield srv
    srv.close()


def openai_error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert isinstance(body.get("error"), dict) and body["error"]["message"], r.text
    return dict(body["error"])


def test_the_workers_are_warm_before_ready_and_answer(server: OpenAIProcess) -> None:
    assert len(server.workers()) == 2, "two warmed analysis workers by default"
    r = server.ask(fx.small_jpeg(1))
    assert r.status_code == 200, r.text
    report = r.json()["forenscope_report"]
    assert {e["expert"] for e in report["experts"]} == set(EXPERTS)
    assert r.json()["choices"][0]["message"]["content"].startswith("Verdict: ")


def test_an_image_past_the_time_limit_gets_an_error_and_the_server_goes_on(
    server: OpenAIProcess,
) -> None:
    before = set(server.workers())
    start = time.monotonic()
    r = server.ask(SLOW)
    took = time.monotonic() - start
    assert r.status_code == 422, r.text
    error = openai_error(r)
    assert error["code"] == "analysis_timeout" and "limit of 1 s" in error["message"]
    assert took < 15, f"the overdue analysis held the request {took:.1f} s"
    nxt = server.ask(fx.small_jpeg(2))
    assert nxt.status_code == 200, nxt.text
    after = set(fx.settled_workers(server.proc.pid, 2))
    assert len(after) == 2 and len(before - after) == 1, "the overdue worker was not replaced"
    assert not any(fx.alive(p) for p in before - after)


def test_a_worker_killed_mid_image_costs_that_request_alone(server: OpenAIProcess) -> None:
    workers = fx.settled_workers(server.proc.pid, 2)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(server.ask, SLOW)
        victim = fx.kill_the_busy_worker(workers, answer.done)
        assert victim is not None, "no worker started on the image"
        r = answer.result()
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, r.text
    error = openai_error(r)
    assert error["code"] == "worker_crashed" and "SIGKILL" in error["message"]
    assert server.http.get("/health").status_code == 200
    assert server.ask(fx.small_jpeg(3)).status_code == 200
    now = fx.settled_workers(server.proc.pid, 2)
    assert victim not in now and len(now) == 2


def test_the_workers_die_with_a_killed_server() -> None:
    fresh = OpenAIProcess()
    try:
        workers, left = fx.kill_leaving_orphans(fresh.proc)
    finally:
        fresh.close()
    assert len(workers) == 2 and not left, f"{len(left)} workers outlived their server"
