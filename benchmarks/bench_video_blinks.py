"""Blink rate on the shared clips (issue 17): per face track, what the blink pass measured and
what it cost.

    OMP_NUM_THREADS=1 python benchmarks/bench_video_blinks.py [--budget 8]

Each clip of ../shared/data/video is analysed with the `face_seam` expert only (faces and
their tracks are what the blink pass needs); one row per face track: its span, the blinks (or
why none are counted), the eye aspect ratio's range, and the seconds the blink pass took.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path
from typing import Any

import forenscope.video.analyze as video_analyze
from forenscope.video import blinks

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=int, default=8)
    args = ap.parse_args()
    spent: dict[str, float] = {}
    measure = blinks.blink_rates

    def timed(*a: Any, **k: Any) -> Any:  # the blink pass alone, inside the clip's analysis
        t = time.perf_counter()
        out = measure(*a, **k)
        spent["s"] = time.perf_counter() - t
        return out

    video_analyze.blink_rates = timed  # type: ignore[attr-defined]
    print("| clip | truth | track: frames (s) | blinks | per minute | blink frames | fps "
          "measured | EAR min-median-max | note | blink pass s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in csv.DictReader((DATA / "video" / "manifest.csv").open()):
        spent.clear()
        report = video_analyze.analyze_video(
            DATA / row["path"], budget=args.budget, experts=["face_seam"]
        )
        if not report.face_tracks:
            print(f"| {row['path']} | {row['label']} | no face track | | | | | | | 0 |")
        for track in report.face_tracks:
            b = track.blink
            assert b is not None
            ears = sorted(e for e in b.ear if e is not None)
            ear = f"{ears[0]:.3f}-{ears[len(ears) // 2]:.3f}-{ears[-1]:.3f}" if ears else "-"
            spans = ", ".join(f"{a}-{z}" if a != z else str(a) for a, z in b.blink_spans)
            print(f"| {row['path']} | {row['label']} | {track.id}: {track.frames[0]}-"
                  f"{track.frames[-1]} ({b.span_s:.1f}) | {b.blinks} | {b.per_minute} | "
                  f"{spans or '-'} | {b.sampled_fps:g} | {ear} | {b.note or '-'} | "
                  f"{spent.get('s', 0.0):.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
