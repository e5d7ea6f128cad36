"""Time per expert and in total on a 1024x768 JPEG, and batch throughput on 1 and 2 processes.

    python benchmarks/bench_speed.py [--repeat 5] [--images 16]

Single-core figures run with one BLAS/OpenMP thread and one expert thread. The image is the
shipped CC0 photo (1024x768 JPEG, 0.79 MP); the target is <= 1 s per megapixel for all signal
and provenance experts together on one core. For a same-run reference, the plain
re-save-and-difference ELA that GUI tools such as Forensically and Sherloq show is timed too.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from forenscope.batch import analyze_batch  # noqa: E402
from forenscope.experts import expert_classes, get_expert  # noqa: E402
from forenscope.forgeries import EXAMPLE_PHOTO, Box, example_photo, make_jpeg_region  # noqa: E402
from forenscope.io import load_image  # noqa: E402
from forenscope.pipeline import analyze_image  # noqa: E402


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_ela(data: bytes, quality: int = 90) -> np.ndarray:
    """The textbook ELA: decode, re-save as JPEG, absolute difference, scaled to [0, 1]."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    diff = np.abs(
        np.asarray(im, np.int16) - np.asarray(Image.open(buf).convert("RGB"), np.int16)
    ).max(axis=-1)
    return diff.astype(np.float32) / max(1, int(diff.max()))


def _analyze_uncached(image: object) -> object:
    from forenscope.faces import detect

    detect._memo.clear()
    return analyze_image(image, threads=1)  # type: ignore[arg-type]


def _detect_faces_uncached(rgb: np.ndarray) -> object:
    """The face experts share one memoised detection per image; time it without the memo."""
    from forenscope.faces import detect

    detect._memo.clear()
    try:
        return detect.detect_faces(rgb)
    except detect.FaceDetectorUnavailable:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--images", type=int, default=16)
    args = ap.parse_args(argv)

    data = EXAMPLE_PHOTO.read_bytes()
    image = load_image(data)
    mp = image.width * image.height / 1e6
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print(f"image: {EXAMPLE_PHOTO.name} {image.width}x{image.height} JPEG ({mp:.2f} MP)\n")

    print("| expert | kind | median s | s per MP | judged |")
    print("|---|---|---|---|---|")
    per_kind: dict[str, float] = {}
    for name, cls in sorted(expert_classes().items()):
        expert = get_expert(name)
        seconds = median_time(lambda e=expert: e.analyze(image), args.repeat)  # type: ignore[misc]
        judged = expert.analyze(image).score is not None
        kind = cls.spec.kind
        per_kind[kind] = per_kind.get(kind, 0.0) + seconds
        print(f"| {name} | {kind} | {seconds:.3f} | {seconds / mp:.3f} | {judged} |")
    face = median_time(lambda: _detect_faces_uncached(image.rgb), args.repeat)
    print(
        f"| (face detection, shared by the face experts, not memoised) | faces | {face:.3f} | "
        f"{face / mp:.3f} | - |"
    )
    ref = median_time(lambda: plain_ela(data), args.repeat)
    print(f"| (reference) plain ELA | signal | {ref:.3f} | {ref / mp:.3f} | - |")

    sig_prov = per_kind.get("signal", 0.0) + per_kind.get("provenance", 0.0)
    total = median_time(lambda: _analyze_uncached(image), args.repeat)
    decode = median_time(lambda: load_image(data), args.repeat)
    print(
        f"\nsignal + provenance experts, one core: {sig_prov:.3f} s ({sig_prov / mp:.3f} s/MP; "
        f"target <= 1 s/MP)"
    )
    print(
        f"full analysis incl. fusion and localization, one core: {total:.3f} s "
        f"(+ decode {decode:.3f} s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = example_photo()
        for i in range(args.images):
            box = Box(64 + 40 * i, 64 + 20 * i, 192, 160)
            (folder / f"img{i:02d}.jpg").write_bytes(make_jpeg_region(base, box).data)
        files = sorted(folder.glob("*.jpg"))
        rates = {}
        for jobs in (1, 2):
            t = time.perf_counter()
            outcomes = list(analyze_batch(files, jobs=jobs))
            elapsed = time.perf_counter() - t
            assert all(o.status != "error" for o in outcomes)
            rates[jobs] = len(files) / elapsed
        print(f"\n| processes | images/s ({args.images} images, no report files) |")
        print("|---|---|")
        for jobs, rate in rates.items():
            print(f"| {jobs} | {rate:.2f} |")
        print(f"\nspeed-up with 2 processes: x{rates[2] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
