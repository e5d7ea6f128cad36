"""Folder throughput of `forenscope analyze DIR --out OUT -j N` (issue 15: -j 2 >= 1.8x -j 1).

    python benchmarks/bench_throughput.py [--sets camera,small,few] [--repeat 2] [--one-core]

Each run is a fresh `forenscope analyze` process on a folder of symlinks, writing to a fresh
--out folder: interpreter start, imports, model loading and the reports are all counted. The
runs alternate -j 1 and -j 2 (the machine's load drifts), `--repeat` times; the table gives the
medians: wall seconds, CPU seconds of the process and its workers, images per minute, cores
busy (CPU / wall) and the -j 2 / -j 1 throughput ratio. `--one-core` adds -j 1 pinned to one
core (`taskset -c 0`): the honest single-core baseline, since -j 1 runs two expert threads.
The `default` row gives no -j (`-j auto`: worker processes for 8 files or more on 2 cores).

Sets (from ../shared/data, skipped when absent): `camera`, the first 12 straight-from-camera
JPEGs of 1.9-4.3 MP in real/metadata-extractor-images; `small`, real/kodak24/kodim01..12.png;
`few`, kodim01..04.png (too few for worker processes: the default stays in one process).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CAMERA = SHARED / "real" / "metadata-extractor-images"
KODAK = SHARED / "real" / "kodak24"


@dataclass
class Run:
    wall_s: float
    cpu_s: float


def camera_set(count: int = 12) -> list[Path]:
    from PIL import Image

    chosen = []
    for path in sorted(CAMERA.glob("*.jpg")):
        with Image.open(path) as im:
            megapixels = im.size[0] * im.size[1] / 1e6
        if 1.9 <= megapixels <= 4.3:
            chosen.append(path)
        if len(chosen) == count:
            break
    return chosen


def small_set(count: int = 12) -> list[Path]:
    return [KODAK / f"kodim{i:02d}.png" for i in range(1, count + 1)]


def few_set() -> list[Path]:
    return small_set(4)


def run_once(files: list[Path], jobs: int | None, one_core: bool = False) -> Run:
    """One fresh `forenscope analyze` of a folder holding `files` (symlinks)."""
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        for f in files:
            (folder / f.name).symlink_to(f)
        cmd = [sys.executable, "-m", "forenscope", "analyze", str(folder), "--out", str(out)]
        cmd += ["--no-progress"] + (["-j", str(jobs)] if jobs is not None else [])
        if one_core:
            cmd = ["taskset", "-c", "0", *cmd]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1, 4):  # clean, suspicious, inconclusive
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        lines = (out / "index.jsonl").read_text().splitlines()
        if len(lines) != len(files):
            raise SystemExit(f"{len(lines)} index lines for {len(files)} files")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="camera,small,few")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one-core", action="store_true", help="add -j 1 on one core")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: no shared data at {SHARED}")
        return
    sets = {"camera": camera_set, "small": small_set, "few": few_set}
    variants: list[tuple[str, int | None, bool]] = [
        ("-j 1", 1, False), ("-j 2", 2, False), ("default", None, False)
    ]  # fmt: skip
    if args.one_core and shutil.which("taskset"):
        variants.insert(0, ("-j 1, one core", 1, True))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    header = f"{'set':<8} {'run':<15} {'wall s':>7} {'CPU s':>7} {'img/min':>8} {'cores':>6}"
    print(header + f" {'vs -j 1':>8}")
    for name in args.sets.split(","):
        files = [f for f in sets[name]() if f.is_file()]
        if not files:
            print(f"{name:<8} skipped: no input files")
            continue
        runs: dict[str, list[Run]] = {label: [] for label, _, _ in variants}
        for _ in range(args.repeat):  # alternated: the load drifts between runs
            for label, jobs, pinned in variants:
                runs[label].append(run_once(files, jobs, pinned))
        wall = {k: statistics.median(r.wall_s for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r.cpu_s for r in v) for k, v in runs.items()}
        for label, _, _ in variants:
            rate = 60.0 * len(files) / wall[label]
            ratio = f"x{wall['-j 1'] / wall[label]:.2f}"
            print(
                f"{name:<8} {label:<15} {wall[label]:7.1f} {cpu[label]:7.1f} {rate:8.1f} "
                f"{cpu[label] / wall[label]:6.2f} {ratio:>8}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
