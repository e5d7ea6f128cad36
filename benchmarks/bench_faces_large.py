"""Face detection above 24 MP: on the full image against the 2x2-averaged one it now uses.

    python benchmarks/bench_faces_large.py [--mp 48]

No photo in ../shared/data has faces and more than 20.4 MP, so each input is a 48 MP mosaic of
four 12-20 MP photos (as in bench_copy_move_large.py) with StarGAN faces from ../shared/data
pasted in at 160-1600 px (upsampled: the faces are smooth, the scenery is not). For each, the
table gives the faces found on the full image and on the averaged one, how many of the pasted
faces each found (a detection centred inside the pasted square), the mean box IoU between the
two detections, and the thread CPU seconds of each detection.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench_copy_move_large import SHARED, mosaic  # noqa: E402

SIDES = (160, 320, 640, 1600)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def inside(box: np.ndarray, square: np.ndarray) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(square[0] <= cx <= square[2] and square[1] <= cy <= square[3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mp", type=float, default=48.0, help="megapixels of each mosaic")
    args = parser.parse_args(argv)
    manifest = SHARED / "manifest.csv"
    if not manifest.is_file():
        print(f"skipped: no {manifest}")
        return 0
    with open(manifest, newline="") as fh:
        faces = [r["path"] for r in csv.DictReader(fh) if "stargan" in r["path"]]
    from forenscope.faces import detect

    shipped = detect.DETECT_MAX_PIXELS
    rng = np.random.default_rng(1)
    print(
        "| mosaic | faces pasted | full: found | pasted found | CPU s "
        "| averaged: found | pasted found | CPU s | box IoU full vs averaged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for first in range(3):
        arr = mosaic(first, args.mp)
        h, w = arr.shape[:2]
        truth = []
        for k, side in enumerate(SIDES):  # one face of each size, in its own column
            with Image.open(SHARED / faces[(4 * first + k) % len(faces)]) as im:
                face = np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))
            x = k * w // len(SIDES) + int(rng.integers(0, max(1, w // len(SIDES) - side)))
            y = int(rng.integers(0, h - side))
            arr[y : y + side, x : x + side] = face
            truth.append(np.array([x, y, x + side, y + side], dtype=np.float64))
        found = []
        cells: list[str] = []
        for limit in (10**12, shipped):
            detect.DETECT_MAX_PIXELS = limit
            cpu = time.thread_time()
            dets = detect._candidates(arr, ("short", "full"))
            cpu = time.thread_time() - cpu
            hits = sum(any(inside(d.box, t) for d in dets) for t in truth)
            cells += [str(len(dets)), f"{hits}/{len(truth)}", f"{cpu:.2f}"]
            found.append(dets)
        detect.DETECT_MAX_PIXELS = shipped
        pairs = [max((box_iou(a.box, b.box) for b in found[1]), default=0.0) for a in found[0]]
        agree = f"{np.mean(pairs):.2f}" if pairs else "-"
        print(f"| {first} | {len(truth)} | " + " | ".join(cells) + f" | {agree} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
