"""Harness overhead per sample and throughput with 1 and 2 workers for `forenscope eval`.

    python benchmarks/bench_eval.py [--n 2000] [--analysis-n 60]

- overhead: the `noop` system (a sha256 of the bytes) on N tiny PNGs with `--align none`, so the
  time is the harness's own (manifest row, file read, sha256 check, record, journal write with
  per fsync mode, summary). Target <= 1 ms per sample.
- throughput: images/s of `noop:20` (a 20 ms stand-in for a slow system) and of the real
  `analysis` pipeline on 256 px synthetic images (aligned jpeg90), with --jobs 1 and 2.
Synthetic data only (written to a temporary folder), so it runs anywhere.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from forenscope.eval.align import Preprocess
from forenscope.eval.journal import FsyncMode
from forenscope.eval.run import EvalConfig, evaluate


def make_manifest(root: Path, n: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = "real" if i % 2 else "fake"
        rel = f"{label}/{i:05d}.png"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        rows.append([rel, label, "g" if label == "fake" else "camera", "", "", "", "synth", sha])
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "family", "scope", "mask", "source", "sha256"])
        w.writerows(rows)
    return manifest


def timed(
    manifest: Path, system: str, out: Path, pre: Preprocess, jobs: int, fsync: FsyncMode
) -> float:
    start = time.perf_counter()
    evaluate(EvalConfig(str(manifest), system, out, pre=pre, jobs=jobs, fsync=fsync))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--analysis-n", type=int, default=60)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = make_manifest(root / "tiny", args.n, 8)
        none = Preprocess("none")
        modes: tuple[FsyncMode, ...] = ("always", "batch", "never")
        for fsync in modes:
            wall = timed(tiny, "noop", root / f"o{fsync}", none, 1, fsync)
            rows.append(
                (f"noop overhead, jobs=1, fsync={fsync}", args.n, wall, 1000 * wall / args.n)
            )
        for jobs in (1, 2):
            n = 200
            sub = make_manifest(root / f"slow{jobs}", n, 8)
            wall = timed(sub, "noop:20", root / f"s{jobs}", none, jobs, "batch")
            rows.append((f"noop:20 (20 ms system), jobs={jobs}", n, wall, 1000 * wall / n))
        big = make_manifest(root / "big", args.analysis_n, 256)
        for jobs in (1, 2):
            wall = timed(
                big, "analysis", root / f"a{jobs}", Preprocess("jpeg90", 256), jobs, "batch"
            )
            rows.append(
                (
                    f"analysis 256px jpeg90, jobs={jobs}",
                    args.analysis_n,
                    wall,
                    1000 * wall / args.analysis_n,
                )
            )
    print(f"{'case':42} {'n':>6} {'wall s':>8} {'ms/img':>8} {'img/s':>8}")
    for name, n, wall, ms in rows:
        print(f"{name:42} {n:6d} {wall:8.2f} {ms:8.3f} {n / wall:8.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
