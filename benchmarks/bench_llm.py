"""LLM engine overhead and throughput against the local fake server, direct and through
LiteLLM's proxy.

    python benchmarks/bench_llm.py [--calls 256] [--concurrency 1 8 64]
    FORENSCOPE_LITELLM=/path/to/bin/litellm python benchmarks/bench_llm.py   # + proxy rows
    FORENSCOPE_LITELLM=... python benchmarks/bench_llm.py --ablate MANIFEST --sample 40 --out DIR

Rows: client-side overhead per call (encode + build + parse, transport mocked in-process), then
end-to-end calls/s and latency against `forenscope.mllm.fake_server` on 127.0.0.1 with the
cache off, and the same calls through a LiteLLM proxy process (`litellm --config`, one worker)
that forwards to that same fake server. The fake server is a threaded Python process, so the
rows measure it as much as the client; they bound the engine's and the proxy's overhead, not a
real model's speed.

`--ablate` runs `eval ablate` (prompts #1-#5 x k in {0,1,2,4} x n in {1,5}) through the proxy,
forwarding to the fake server (10% of its answers refusals), and prints the paper-shaped tables.
The fake model answers from brightness, whatever the prompt or examples, so the figures show the
harness working end to end, not any model's skill.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from forenscope.eval.ablate import ablate
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.litellm_proxy import LITELLM_ENV, LiteLLMProxy, find_litellm, forward_model
from forenscope.mllm.runner import MLLMEngine

ANSWER = {
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Yes"},
            "finish_reason": "stop",
            "logprobs": {
                "content": [
                    {
                        "token": "Yes",
                        "logprob": -0.1,
                        "top_logprobs": [
                            {"token": "Yes", "logprob": -0.1},
                            {"token": "No", "logprob": -2.4},
                        ],
                    }
                ]
            },
        }
    ],
    "usage": {"prompt_tokens": 100, "completion_tokens": 1},
}


def _image(i: int) -> np.ndarray:
    return np.full((256, 256, 3), i % 256, np.uint8)


async def _batch(cfg: LLMConfig, calls: int, conc: int, **kw: Any) -> tuple[float, list[float]]:
    """`conc` workers share `calls` detections; latency is per call, without queueing."""
    lat: list[float] = []
    todo = iter(range(calls))

    async def worker(eng: MLLMEngine) -> None:
        for i in todo:
            t0 = time.perf_counter()
            res = await eng.adetect(_image(i), scoring="logprobs")
            assert res.status == "ok", res.error
            lat.append(time.perf_counter() - t0)

    async with MLLMEngine(cfg, **kw) as eng:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(eng) for _ in range(conc)))
        return time.perf_counter() - t0, lat


def _row(name: str, conc: int, calls: int, wall: float, lat: list[float]) -> str:
    p95 = sorted(lat)[int(0.95 * (len(lat) - 1))]
    return (
        f"| {name:<22} | {conc:>5} | {calls:>5} | {calls / wall:>9.1f} | "
        f"{statistics.mean(lat) * 1e3:>9.2f} | {p95 * 1e3:>8.2f} |"
    )


def run_ablation(manifest: str, sample: int, out: Path) -> None:
    """The seed-000 grid through a LiteLLM proxy that forwards to the fake server."""
    from forenscope.eval.align import Preprocess
    from forenscope.eval.run import EvalConfig

    # 10% of the fake model's answers are refusals, so the refusal tables have something to count
    with FakeServerProcess("--delay", "0", "--faults", "refusal:0.1", "--seed", "0") as server:
        with LiteLLMProxy([forward_model("fake-vision", server.base_url, "fake-vision")]) as px:
            cfg = out / "llm.json"
            out.mkdir(parents=True, exist_ok=True)
            cfg.write_text(json.dumps({"base_url": px.base_url, "model": "fake-vision",
                                       "flavor": "openai", "api_key_env": px.key_env,
                                       "cache": False, "concurrency": 8}))  # fmt: skip
            base = EvalConfig(manifest, f"llm:{cfg}", out, filters=["source!=cifake"],
                              sample=sample, pre=Preprocess("jpeg90", 256))  # fmt: skip
            t0 = time.perf_counter()
            result = ablate(base, [1, 2, 3, 4, 5], [0, 1, 2, 4], [1, 5], overlays=False)
            wall = time.perf_counter() - t0
    print((out / "ablation.md").read_text(encoding="utf-8"))
    print(f"{len(result['cells'])} cells over {result['n_samples']} images in {wall:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=256)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--ablate", metavar="MANIFEST", help="run the ablation grid instead")
    ap.add_argument("--sample", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-llm-ablate"))
    args = ap.parse_args()
    if args.ablate:
        run_ablation(args.ablate, args.sample, args.out)
        return
    print("| setup                  | conc. | calls |   calls/s |  mean ms |   p95 ms |")
    print("|------------------------|-------|-------|-----------|----------|----------|")
    mock = httpx.MockTransport(lambda r: httpx.Response(200, content=json.dumps(ANSWER).encode()))
    cfg = LLMConfig(base_url="http://mock/v1", model="m", flavor="openai", cache=False)
    wall, lat = asyncio.run(_batch(cfg, args.calls, 1, transport=mock))
    print(_row("in-process (overhead)", 1, args.calls, wall, lat))
    with FakeServerProcess() as server, ExitStack() as stack:
        routes: list[tuple[str, str, str | None]] = [("fake server, direct", server.base_url, None)]
        if find_litellm() is not None:
            proxy = stack.enter_context(
                LiteLLMProxy([forward_model("fake", server.base_url, "fake")])
            )
            routes.append(("via LiteLLM proxy", proxy.base_url, proxy.key_env))
        else:
            print(f"(no LiteLLM proxy rows: set {LITELLM_ENV} to a litellm executable)")
        for conc in args.concurrency:
            for name, url, key_env in routes:
                cfg = LLMConfig(base_url=url, model="fake", flavor="openai", cache=False,
                                concurrency=conc, api_key_env=key_env)  # fmt: skip
                wall, lat = asyncio.run(_batch(cfg, args.calls, conc))
                print(_row(name, conc, args.calls, wall, lat))


if __name__ == "__main__":
    main()
