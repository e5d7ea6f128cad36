"""copy_move above 24 MP: the full-size search against the 2x2-averaged one it now runs (issue 15).

    python benchmarks/bench_copy_move_large.py [--mp 48]

No photo in ../shared/data has more than 20.4 MP, and an upsampled one is too smooth to test
(copy_move abstains on it: "almost no textured area"). So each input is a 2x2 mosaic of crops
of four 12-20 MP photos from ../shared/data at their own resolution, with a square copied from
the left half to the right half (sides 0 = untouched, 96, 192, 384, 768 px; positions seeded),
saved as JPEG quality 92. Each is analysed by copy_move with the threshold lifted (full-size
search) and as shipped; the table gives the score, the number of pairs, the IoU of the map at
0.5 with source + copy, and the thread CPU seconds of each.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = [
    "real/metadata-extractor-images/Kodak PIXPRO FZ201.jpg",
    "real/lomiri-wallpapers-20.04/Kleiber_by_Lukas_Baubkus.jpg",
    "real/lomiri-wallpapers-16.04/seeding_by_Clements_Engelhardt.jpg",
    "real/lomiri-wallpapers-16.04/Dragonfly_by_Bolly.jpg",
    "real/lomiri-wallpapers-16.04/sunset_by_Aitzol_Berasategi.jpg",
    "real/metadata-extractor-images/Canon EOS 1000D.jpg",
]
SIDES = (0, 96, 192, 384, 768)


def mosaic(first: int, megapixels: float) -> np.ndarray:
    """A 4:3 image of `megapixels`: four quadrants cut from four photos (black where short)."""
    qw = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 2
    qh = int((megapixels * 1e6 * 3 / 4) ** 0.5) // 2
    out = np.zeros((2 * qh, 2 * qw, 3), np.uint8)
    for q in range(4):
        with Image.open(SHARED / PHOTOS[(first + q) % len(PHOTOS)]) as im:
            a = np.asarray(im.convert("RGB"))[:qh, :qw]
        y, x = (q // 2) * qh, (q % 2) * qw
        out[y : y + a.shape[0], x : x + a.shape[1]] = a
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mp", type=float, default=48.0, help="megapixels of each mosaic")
    args = parser.parse_args(argv)
    if not all((SHARED / p).is_file() for p in PHOTOS):
        print(f"skipped: the photos are not under {SHARED}")
        return 0
    from forenscope.experts import copy_move, get_expert
    from forenscope.experts._working import COPY_MOVE_MAX_PIXELS
    from forenscope.io import load_image
    from forenscope.map_geometry import resize_map

    shipped = COPY_MOVE_MAX_PIXELS
    expert = get_expert("copy_move")
    rng = np.random.default_rng(0)
    print(
        "| mosaic | copy side px | full: score | pairs | IoU | CPU s "
        "| averaged: score | pairs | IoU | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for first in range(3):
        base = mosaic(first, args.mp)
        h, w = base.shape[:2]
        for side in SIDES:
            arr, truth = base.copy(), np.zeros((h, w), bool)
            if side:
                y0, x0 = rng.integers(0, h - side), rng.integers(0, w // 2 - side)
                y1, x1 = rng.integers(0, h - side), rng.integers(w // 2, w - side)
                arr[y1 : y1 + side, x1 : x1 + side] = base[y0 : y0 + side, x0 : x0 + side]
                truth[y0 : y0 + side, x0 : x0 + side] = True
                truth[y1 : y1 + side, x1 : x1 + side] = True
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, "JPEG", quality=92)
            cells = []
            for limit in (10**12, shipped):
                copy_move.COPY_MOVE_MAX_PIXELS = limit  # read at each analysis
                image = load_image(buf.getvalue())
                cpu = time.thread_time()
                result = expert.analyze(image)
                cpu = time.thread_time() - cpu
                iou = "-"
                if side and result.heatmap is not None:
                    t = resize_map(truth.astype(np.float32), *result.heatmap.shape) >= 0.5
                    m = result.heatmap >= 0.5
                    iou = f"{(m & t).sum() / max(1, (m | t).sum()):.2f}"
                score = "abstains" if result.score is None else f"{result.score:.2f}"
                pairs = len(result.details.get("pairs", []))
                cells += [score, str(pairs), iou, f"{cpu:.1f}"]
            copy_move.COPY_MOVE_MAX_PIXELS = shipped
            print(f"| {first} | {side} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
