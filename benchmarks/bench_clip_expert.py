"""Time per image of the `clip_detector` expert: DAAM off, DAAM in two encoder passes (the old
path: plain graph for the score and patch map, then the block-output graph for DAAM) and DAAM
in one pass (the block-output graph serves all three). Needs the cached encoder
(`forenscope models pull`) and ../shared/data.

    python benchmarks/bench_clip_expert.py [--threads 1 2] [--images 16] [--rounds 3]

Each thread count runs in a fresh process with FORENSCOPE_ORT_THREADS and the BLAS thread
count set to it. Modes are interleaved over rounds and the best round of each is kept (robust
to a busy machine); CPU ms (process time) is printed beside wall ms for the same reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("DAAM off", "DAAM two-pass (before)", "DAAM single-pass (now)")


def load_images(data: Path, n: int, side: int = 256) -> list[np.ndarray]:
    """`n` manifest images spread over the manifest (so over its sources, real and generated),
    shorter side resized to `side`."""
    from PIL import Image

    with open(data / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if min(int(r["width"]), int(r["height"])) >= side]
    out = []
    for row in rows[:: max(1, len(rows) // n)][:n]:
        with Image.open(data / row["path"]) as im:
            img = im.convert("RGB")
        scale = side / min(img.size)
        size = (round(img.width * scale), round(img.height * scale))
        out.append(np.asarray(img.resize(size, Image.Resampling.BICUBIC)))
    return out


def two_pass(model: Any, rgb: np.ndarray) -> tuple[Any, Any]:
    """The expert's encoder step as it was before issue 3's single pass."""
    from forenscope.experts import clip_detector

    explainer = clip_detector._daam_if_on(model)  # DAAM is on in this mode
    assert explainer is not None
    pred = model.predict([rgb])[0]
    return pred, explainer if isinstance(explainer, str) else explainer.explain(rgb)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def worker(data: Path, n: int, rounds: int) -> dict[str, Any]:
    """Runs in the child process; returns best wall and CPU ms per image for each mode."""
    from forenscope.experts import clip_detector
    from forenscope.io.input import ImageInput

    images = [
        ImageInput(rgb=r, data=r.tobytes(), format="PNG", mode="RGB") for r in load_images(data, n)
    ]
    expert, single = clip_detector.ClipDetector(), clip_detector._encode

    def set_mode(mode: str) -> None:
        os.environ["FORENSCOPE_CLIP_DAAM"] = "0" if mode == "DAAM off" else "1"
        clip_detector._encode = two_pass if "two-pass" in mode else single

    def run_all() -> None:
        for image in images:
            result = expert.analyze(image)
            if result.score is None:
                raise SystemExit(f"expert did not score: {result.abstain_reason or result.error}")

    memory = {"before loading": rss_mb()}
    order = (MODES[2], MODES[1], MODES[0])  # single pass first: its memory is measured alone
    for mode in order:
        set_mode(mode)
        expert.analyze(images[0])  # load + warm
        memory[f"after first {mode}"] = rss_mb()
    best = {m: (float("inf"), float("inf")) for m in MODES}
    for _ in range(rounds):
        for mode in order:
            set_mode(mode)
            wall, cpu = time.perf_counter(), time.process_time()
            run_all()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            old = best[mode]
            best[mode] = (min(old[0], 1000 * wall / n), min(old[1], 1000 * cpu / n))
    return {"best": best, "memory": memory, "n": len(images)}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def print_table(threads: int, out: dict[str, Any], loads: tuple[float, float]) -> None:
    best = out["best"]
    off_wall, off_cpu = best[MODES[0]]
    print(
        f"\n## {threads} thread(s): {out['n']} images (shorter side 256 px), best of rounds; "
        f"load average {loads[0]:.2f} before, {loads[1]:.2f} after\n"
    )
    print("| mode | ms/image (wall) | vs DAAM off | CPU ms/image | vs DAAM off |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        wall, cpu = best[mode]
        print(
            f"| {mode} | {wall:.0f} | {wall / off_wall:.2f}x | {cpu:.0f} | {cpu / off_cpu:.2f}x |"
        )
    two, one = best[MODES[1]], best[MODES[2]]
    print(
        f"\nsingle pass vs two passes: {one[0] / two[0]:.2f}x wall "
        f"({two[0] - one[0]:.0f} ms saved per image), {one[1] / two[1]:.2f}x CPU"
    )
    mem = out["memory"]
    print(
        "resident memory (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in mem.items())
        + " (the two-pass and DAAM-off modes add the plain graph's session)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.data, args.images, args.rounds)))
        return
    import onnxruntime

    print("# clip_detector expert: DAAM in one encoder pass vs two (issue 3)\n")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"onnxruntime {onnxruntime.__version__}, numpy {np.__version__}"
    )
    for threads in args.threads:
        env = dict(os.environ, FORENSCOPE_ORT_THREADS=str(threads))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        cmd = [sys.executable, __file__, "--worker", "--data", str(args.data)]
        cmd += ["--images", str(args.images), "--rounds", str(args.rounds)]
        before = os.getloadavg()[0]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(done.stderr or done.stdout)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        print_table(threads, out, (before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
