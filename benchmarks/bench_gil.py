"""How long each expert holds the GIL at a stretch, which is what the other expert thread waits on.

Each expert analyses the image a few times on a worker thread while this thread keeps asking
for the GIL (`time.sleep(0)` gives it up and takes it back). A wait longer than `--min-ms` means
the expert held the GIL that long; it is charged to the line where the expert let it go (the
bottom three frames are printed). numpy and Pillow's decoder let the GIL go around their loops,
so what shows up is Python-level work and C code that keeps the GIL (Pillow's JPEG encoder into
a BytesIO held it for 0.25 s of a 10 MP jpeg_artifacts run before io.jpeg_codec).

    python benchmarks/bench_gil.py IMAGE [--experts a,b] [--runs 3] [--min-ms 0.5]
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
import traceback
from pathlib import Path


def held_stretches(
    expert_name: str, image: object, runs: int, min_s: float
) -> tuple[float, dict[str, float], collections.Counter[str]]:
    """(CPU seconds per run, seconds held per release point, stretches per release point)."""
    from forenscope.experts.registry import get_expert

    expert = get_expert(expert_name)
    expert.analyze(image)  # type: ignore[arg-type]  # models loaded, caches warm
    held: dict[str, float] = collections.defaultdict(float)
    count: collections.Counter[str] = collections.Counter()
    state: dict[str, float] = {"done": 0, "tid": 0, "cpu": 0.0}

    def work() -> None:
        state["tid"] = threading.get_ident()
        start = time.thread_time()
        for _ in range(runs):
            expert.analyze(image)  # type: ignore[arg-type]
        state["cpu"] = (time.thread_time() - start) / runs
        state["done"] = 1

    worker = threading.Thread(target=work)
    worker.start()
    while not state["done"]:
        t0 = time.perf_counter()
        time.sleep(0)
        waited = time.perf_counter() - t0
        if waited < min_s:
            continue
        frame = sys._current_frames().get(int(state["tid"]))
        if frame is None:
            continue
        where = " <- ".join(
            f"{f.name}:{f.lineno}" for f in reversed(traceback.extract_stack(frame)[-3:])
        )
        held[where] += waited
        count[where] += 1
    worker.join()
    return float(state["cpu"]), held, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--experts", default=None, help="comma-separated (default: the default set)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-ms", type=float, default=0.5)
    ap.add_argument("--top", type=int, default=3, help="release points shown per expert")
    args = ap.parse_args(argv)

    from forenscope.io import load_image
    from forenscope.pipeline import default_experts

    image = load_image(args.image)
    names = args.experts.split(",") if args.experts else default_experts()
    print(f"{args.image.name}: {image.width}x{image.height}, {args.runs} runs per expert\n")
    print("| expert | CPU s per run | GIL held in stretches > min-ms, s per run | stretches | "
          "where it let go (most held first) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in names:
        cpu, held, count = held_stretches(name, image, args.runs, args.min_ms / 1000)
        total = sum(held.values()) / args.runs
        stretches = sum(count.values()) / args.runs
        most = sorted(held.items(), key=lambda item: -item[1])[: args.top]
        top = "; ".join(f"{where} ({seconds / args.runs:.3f} s)" for where, seconds in most)
        print(f"| {name} | {cpu:.2f} | {total:.3f} | {stretches:.0f} | {top or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
