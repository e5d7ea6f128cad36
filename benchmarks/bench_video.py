"""Video analysis on ../shared/data/video (12 clips) and the speed of a 10 s 1080p clip.

    OMP_NUM_THREADS=1 python benchmarks/bench_video.py [--budget 8] [--max-side 768]

Prints one table per container group (MP4/MKV, GIF), because container, frame rate and size
differ by group (see ../shared/data/video/README.md): a format-only baseline (GIF or under
20 fps -> "fake") sits beside Forenscope's verdict to show how much a format alone "knows".
12 clips measure nothing about accuracy; the table is per clip. Results are kept in
--checkpoint (JSONL), so a re-run skips finished clips.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from forenscope.video import analyze_video

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def format_only(row: dict[str, str]) -> str:
    """The confound as a classifier: GIFs and low frame rates are 'fake' in this set."""
    return "fake" if row["format"] == "gif" or float(row["fps"]) < 20 else "real"


def top_evidence(report: Any) -> str:
    strong = [f for f in report.temporal if f.suggests is not None]
    if strong:
        return f"{strong[0].kind}: {strong[0].summary[:90]}"
    best = max(report.frames, key=lambda fr: 1 - fr.report.verdict.probabilities["real"])
    ev = best.report.key_evidence
    kinds = sorted({f.kind for f in report.temporal})
    tail = f"; temporal: {', '.join(kinds)}" if kinds else ""
    return (f"frame {best.index}: {ev[0].summary[:80]}" if ev else "no key evidence") + tail


def run_clip(path: Path, budget: int, max_side: int) -> dict[str, Any]:
    t = time.perf_counter()
    report = analyze_video(path, budget=budget, max_side=max_side)
    seconds = time.perf_counter() - t
    v = report.verdict
    return {
        "verdict": v.label if v.label != "inconclusive" else f"inconclusive ({v.leaning})",
        "p": v.probability,
        "frame_labels": v.frame_labels,
        "top": top_evidence(report),
        "seconds": seconds,
        "per_frame": report.timings.get("frames_s", 0.0) / max(1, len(report.frames)),
        "frames": len(report.frames),
        "temporal": len(report.temporal),
        "tracks": len(report.face_tracks),
    }


def speed_clip(folder: Path) -> Path:
    """A synthetic 10 s 1080p (30 fps) clip written by libx264."""
    import av

    path = folder / "speed-1080p.mp4"
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for t in range(300):
            g = 128 + 60 * np.sin((xx + 4 * t) / 40) * np.cos(yy / 55)
            rgb = np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--max-side", type=int, default=768)
    ap.add_argument("--checkpoint", type=Path, default=Path("/tmp/forenscope-bench-video.jsonl"))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the 1080p clip (fresh RSS)")
    args = ap.parse_args()
    if args.speed_only:
        return speed(args.budget, args.max_side)
    manifest = DATA / "video" / "manifest.csv"
    if not manifest.is_file():
        print(f"no {manifest}; nothing to measure", file=sys.stderr)
        return 1
    key = f"budget={args.budget},max_side={args.max_side}"
    done: dict[str, dict[str, Any]] = {}
    if args.checkpoint.exists():
        for line in args.checkpoint.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("key") == key:
                done[rec["path"]] = rec
    rows = list(csv.DictReader(manifest.open()))
    for row in rows:
        if row["path"] in done:
            continue
        rec = {"path": row["path"], "key": key, **run_clip(DATA / row["path"], args.budget,
                                                            args.max_side)}  # fmt: skip
        done[row["path"]] = rec
        with args.checkpoint.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"done {row['path']} in {rec['seconds']:.1f} s", file=sys.stderr)
    for group, fmts in (("MP4 / MKV", {"mp4", "mkv"}), ("GIF", {"gif"})):
        print(f"\n### {group} clips ({key})\n")
        print("| clip | truth | format-only baseline | Forenscope verdict (p) | frame labels "
              "r/a/t/inc | top evidence | s per clip | s per analysed frame |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            if row["format"] not in fmts:
                continue
            r = done[row["path"]]
            fl = r["frame_labels"]
            labels = f"{fl['real']}/{fl['ai_generated']}/{fl['tampered']}/{fl['inconclusive']}"
            top = r["top"].replace("|", "/")
            print(f"| {row['path'].removeprefix('video/')} | {row['label']} ({row['generator']}) "
                  f"| {format_only(row)} | {r['verdict']} ({r['p']:.2f}) | {labels} | {top} "
                  f"| {r['seconds']:.1f} | {r['per_frame']:.2f} |")  # fmt: skip
    return 0 if args.skip_speed else speed(args.budget, args.max_side)


def speed(budget: int, max_side: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = speed_clip(Path(tmp))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        report = analyze_video(path, budget=budget, max_side=max_side)
        seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\n10 s 1080p synthetic clip (300 frames, {budget} analysed at max side {max_side}): "
        f"{seconds:.1f} s wall; timings {report.timings}; peak RSS of the process "
        f"{peak / 1024:.0f} MB (was {before / 1024:.0f} MB before this clip)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
