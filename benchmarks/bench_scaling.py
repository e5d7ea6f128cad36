"""Time and peak memory of one analysis as the image grows (issue 15), cold and warm.

    python benchmarks/bench_scaling.py [--sizes 1,4,12,24,48] [--real auto|none|FILE,...]
        [--experts ela,noise] [--threads 1] [--warm 1] [--per-expert-memory]

Each input is analysed in a fresh process (`cold`: from the process's spawn through interpreter
start, imports, model loading, decode and analysis to the report, with the peak RSS so far), then
`--warm` more times in that same process (`warm`: models loaded; the median is printed). In the
same process, the floor is a plain Pillow decode of the same file plus a resize to half its
sides. Synthetic inputs are a camera photo resampled to each size and saved as JPEG quality 90;
real inputs are straight-from-camera JPEGs from ../shared/data (skipped when it is absent).
Per-expert times come from the warm run (`Report.timings`, one expert thread unless
`--threads`); `--per-expert-memory` also runs each expert alone in its own fresh process and
prints its peak RSS above the decoded image's.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CAMERA = SHARED / "real" / "metadata-extractor-images"
# Straight-from-camera JPEGs (manifest's second batch) at about 1, 4, 10 and 16 MP.
REAL_AUTO = (
    "Sony DCR-PC110E (2).jpg",
    "Kodak DX4900 Zoom.jpg",
    "Canon EOS 1000D.jpg",
    "Kodak PIXPRO FZ201.jpg",
)
SYNTH_SOURCE = CAMERA / "Canon EOS 1000D.jpg"  # 10 MP; the shipped photo when data is absent


@dataclass
class Input:
    label: str
    path: Path


def peak_rss_mb() -> float:
    """This process's peak resident set size since start or the last reset (VmHWM), in MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss_mb() -> float:
    """Reset the peak to the current RSS (Linux clear_refs 5) and return it, in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        print("(peak RSS cannot be reset here: per-expert memory includes decoding)")
    return peak_rss_mb()


def synthetic_inputs(sizes: list[float], folder: Path) -> list[Input]:
    from PIL import Image

    from forenscope.forgeries import EXAMPLE_PHOTO

    source = SYNTH_SOURCE if SYNTH_SOURCE.is_file() else EXAMPLE_PHOTO
    with Image.open(source) as im:
        base = im.convert("RGB")
    out = []
    for mp in sizes:
        scale = (mp * 1e6 / (base.width * base.height)) ** 0.5
        size = (round(base.width * scale), round(base.height * scale))
        path = folder / f"synthetic_{mp:g}mp.jpg"
        base.resize(size, Image.Resampling.LANCZOS).save(path, "JPEG", quality=90)
        out.append(Input(f"synthetic {mp:g} MP", path))
    return out


def real_inputs(spec: str) -> list[Input]:
    if spec == "none":
        return []
    names = REAL_AUTO if spec == "auto" else tuple(spec.split(","))
    paths = [Path(n) if Path(n).is_file() else CAMERA / n for n in names]
    found = [p for p in paths if p.is_file()]
    if len(found) < len(paths):
        print(f"(real camera JPEGs not found, skipped: {len(paths) - len(found)})")
    return [Input(f"camera {p.stem}", p) for p in found]


# -- the child: one fresh process per input ---------------------------------------------------


def child(
    path: Path, experts: list[str] | None, threads: int, warm: int, only: str | None,
    spawned_at: float,
) -> None:  # fmt: skip
    """Analyse `path` (cold, then `warm` times), print one JSON line of figures. The cold time
    runs from the parent's spawn (`spawned_at`, wall clock) to the first report."""
    from forenscope.faces import detect
    from forenscope.io import load_image
    from forenscope.pipeline import analyze, run_experts

    if only is not None:  # one expert alone, for its memory above the decoded image
        image = load_image(path)
        base = reset_peak_rss_mb()
        t = time.perf_counter()
        run_experts(image, [only], threads=1)
        seconds, above = time.perf_counter() - t, peak_rss_mb() - base
        print(json.dumps({"expert": only, "s": seconds, "above_decode_mb": above}))
        return
    cold = analyze(path, experts=experts, threads=threads)
    cold_s, cold_rss = time.time() - spawned_at, peak_rss_mb()
    warm_runs = []
    # CPU time and voluntary context switches of the warm runs: the switches count the expert
    # threads waiting on each other (mostly for the GIL; one thread makes a few dozen).
    cpu0, switches0 = os.times(), resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    for _ in range(warm):
        detect._memo.clear()  # the face detection is memoised per image: pay it every run
        warm_runs.append(analyze(path, experts=experts, threads=threads).timings)
    cpu1, switches1 = os.times(), resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    runs = max(1, warm)
    warm_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / runs
    floor = min(pillow_floor(path) for _ in range(max(1, warm)))
    print(json.dumps({
        "width": cold.image.width, "height": cold.image.height, "cold": cold.timings,
        "cold_s": cold_s, "cold_rss_mb": cold_rss, "warm": warm_runs, "floor_s": floor,
        "warm_cpu_s": warm_cpu, "warm_switches": (switches1 - switches0) / runs,
    }))  # fmt: skip


def pillow_floor(path: Path) -> float:
    """A plain Pillow decode of the file plus a resize to half its sides: the floor."""
    from PIL import Image

    t = time.perf_counter()
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.BILINEAR)
    return time.perf_counter() - t


def run_child(args: list[str]) -> dict[str, Any]:
    """The figures a fresh child process prints (its last line, JSON)."""
    cmd = [sys.executable, __file__, "--child", *args, "--spawned-at", repr(time.time())]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the parent: tables --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,12,24,48", help="synthetic sizes in MP ('' = none)")
    ap.add_argument("--real", default="auto", help="auto, none, or camera JPEG names/paths")
    ap.add_argument("--experts", default=None, help="comma-separated experts (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="expert threads per analysis")
    ap.add_argument("--warm", type=int, default=1, help="warm runs after the cold one")
    ap.add_argument("--per-expert-memory", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spawned-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    experts = [e for e in args.experts.split(",") if e] if args.experts else None
    if args.child is not None:
        child(Path(args.child), experts, args.threads, args.warm, args.only, args.spawned_at)
        return 0

    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
        f"{args.threads} expert thread(s), 1 BLAS/OpenMP thread\n"
    )
    sys.stdout.flush()
    sizes = [float(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        inputs = synthetic_inputs(sizes, Path(tmp)) + real_inputs(args.real)
        rows = [measure(i, args, experts) for i in inputs]
    print_totals(rows)
    print_experts(rows)
    return 0


@dataclass
class Row:
    input: Input
    figures: dict[str, Any]
    cold_wall: float
    cold_rss: float
    expert_rss: dict[str, float]

    @property
    def mp(self) -> float:
        return float(self.figures["width"] * self.figures["height"] / 1e6)

    @property
    def warm(self) -> dict[str, float]:
        runs = self.figures["warm"] or [self.figures["cold"]]
        return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}


def measure(item: Input, args: argparse.Namespace, experts: list[str] | None) -> Row:
    common = ["--threads", str(args.threads), "--warm", str(args.warm)]
    if args.experts:
        common += ["--experts", args.experts]
    figures = run_child([str(item.path), *common])
    expert_rss: dict[str, float] = {}
    if args.per_expert_memory:
        names = experts or list(figures["warm"][0] if figures["warm"] else figures["cold"])
        for name in [n.removeprefix("expert.").removesuffix("_s") for n in names]:
            if name.startswith(("experts", "fusion", "faces", "total", "decode", "llm")):
                continue
            alone = run_child([str(item.path), "--only", name])
            expert_rss[name] = alone["above_decode_mb"]
    wall = figures["cold_s"]
    print(f"measured {item.label}: cold {wall:.1f} s", file=sys.stderr, flush=True)
    # The child's own peak (RUSAGE_SELF after the cold run): RUSAGE_CHILDREN would give the
    # largest over every child so far, not this one's.
    return Row(item, figures, wall, figures["cold_rss_mb"], expert_rss)


def print_totals(rows: list[Row]) -> None:
    print("| input | MP | cold s (fresh process) | cold peak MB | warm s | warm s/MP | "
          "Pillow decode+resize s | warm / floor | decode s | fusion s | warm CPU s | "
          "switches |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w, floor = r.warm, r.figures["floor_s"]
        print(
            f"| {r.input.label} | {r.mp:.1f} | {r.cold_wall:.1f} | {r.cold_rss:.0f} | "
            f"{w['total_s']:.2f} | {w['total_s'] / r.mp:.2f} | {floor:.3f} | "
            f"x{w['total_s'] / floor:.0f} | {w['decode_s']:.2f} | {w['fusion_s']:.2f} | "
            f"{r.figures['warm_cpu_s']:.2f} | {r.figures['warm_switches']:.0f} |"
        )


def print_experts(rows: list[Row]) -> None:
    names = sorted(
        {k[len("expert.") : -2] for r in rows for k in r.warm if k.startswith("expert.")}
    )
    print("\nwarm seconds per expert (and MB above the decoded image, when measured):\n")
    print("| expert | " + " | ".join(f"{r.input.label} ({r.mp:.0f} MP)" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name in names:
        cells = []
        for r in rows:
            s = r.warm.get(f"expert.{name}_s")
            rss = r.expert_rss.get(name)
            cell = "-" if s is None else f"{s:.2f}"
            cells.append(cell if rss is None else f"{cell} ({rss:.0f} MB)")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
