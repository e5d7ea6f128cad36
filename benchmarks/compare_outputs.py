"""Do two trees give the same results? Every default expert and the whole analysis on a fixed
sample of ../shared/data, saved by one tree and compared with another's (issue 15: a speed-up
must not change what the experts say).

    PYTHONPATH=<old tree>/src python benchmarks/compare_outputs.py save OLD_DIR [--extra IMG ...]
    PYTHONPATH=<new tree>/src python benchmarks/compare_outputs.py save NEW_DIR [--extra IMG ...]
    python benchmarks/compare_outputs.py compare OLD_DIR NEW_DIR

The sample: every tampered image, two images per generator (CIFAKE left out), and 25 untouched
photos of which 8 are over 3 MP, in manifest order. `save` runs each expert alone on one thread
(`run_experts`) and the whole analysis (`analyze`), and pickles what they return. `compare`
prints every difference: scores, confidences, abstentions, evidence, details and heatmaps of
the experts; the verdict, its attribution and key evidence; the fused heatmap (by its sha256), the
fused mask and its regions.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import pickle
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def sample(data: Path = SHARED) -> list[Path]:
    """The fixed sample, in manifest order."""
    with open(data / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["path"])
    picked: list[dict[str, str]] = []
    per_generator: dict[str, int] = defaultdict(int)
    real = [r for r in rows if r["label"] == "real"]
    large = [r for r in real if int(r["width"] or 0) * int(r["height"] or 0) > 3e6][:8]
    small = [r for r in real if r not in large][:: max(1, len(real) // 17)][:17]
    for r in rows:
        if r["label"] == "tampered":
            picked.append(r)
        elif r["label"] == "fake" and not r["path"].startswith("cifake"):
            if per_generator[r["generator"]] < 2:
                per_generator[r["generator"]] += 1
                picked.append(r)
    return [data / r["path"] for r in picked + large + small]


def _expert_record(result: Any) -> dict[str, Any]:
    heatmap = None if result.heatmap is None else np.asarray(result.heatmap, dtype=np.float32)
    return {
        "score": result.score,
        "confidence": result.confidence,
        "abstain": result.abstain_reason,
        "error": None if result.error is None else str(result.error),
        "evidence": [e.model_dump(mode="json") for e in result.evidence],
        "details": result.details,
        "heatmap": heatmap,
    }


def _analysis_record(report: Any) -> dict[str, Any]:
    mask = None if report.fused_mask is None else np.asarray(report.fused_mask, dtype=bool)
    return {
        "verdict": report.verdict.model_dump(mode="json"),
        "attribution": report.attribution.model_dump(mode="json"),
        "key_evidence": [e.model_dump(mode="json") for e in report.key_evidence or []],
        "mask": mask,
        "fused_heatmap": _digest(report.fused_heatmap),
        "regions": [r.model_dump(mode="json") for r in report.regions or []],
    }


def _digest(heatmap: Any) -> str | None:
    """Shape, type and sha256 of an image-sized map: equal bits or not, without keeping 64 MB
    of floats per large image in the saved file."""
    if heatmap is None:
        return None
    a = np.ascontiguousarray(heatmap)
    return f"{a.shape} {a.dtype} {hashlib.sha256(a.tobytes()).hexdigest()}"


def save(folder: Path, extra: list[Path]) -> None:
    from tqdm import tqdm

    from forenscope.io import load_image
    from forenscope.pipeline import analyze_image, default_experts, run_experts

    names = default_experts()
    results: dict[str, Any] = {}
    for path in tqdm([*sample(), *extra], desc="images", unit="img"):
        try:
            image = load_image(path)
        except Exception as exc:  # a file this tree cannot read is a result too
            results[str(path)] = f"load error: {exc}"
            continue
        results[str(path)] = {
            "experts": {r.expert: _expert_record(r) for r in run_experts(image, names, threads=1)},
            "analysis": _analysis_record(analyze_image(image, threads=1)),
        }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.pkl").write_bytes(pickle.dumps(results))
    print(f"saved {len(results)} images to {folder}")


def _differences(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.shape != b.shape:
            out.append(f"{where}: {getattr(a, 'shape', a)} -> {getattr(b, 'shape', b)}")
        elif a.dtype == bool:
            if not np.array_equal(a, b):
                out.append(f"{where}: {float(np.mean(a != b)):.3%} of pixels differ")
        elif a.size and float(np.max(np.abs(a - b))) > 0:
            out.append(f"{where}: max |d| {float(np.max(np.abs(a - b))):.3g}")
    elif isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only {'after' if key in b else 'before'}")
            else:
                _differences(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _differences(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {a!r} -> {b!r}")


def compare(before: Path, after: Path) -> int:
    """Print the differences; exit status 1 if any."""
    a = pickle.loads((before / "results.pkl").read_bytes())
    b = pickle.loads((after / "results.pkl").read_bytes())
    shared = sorted(set(a) & set(b))
    differing: dict[str, int] = defaultdict(int)
    for image in shared:
        found: list[str] = []
        _differences(a[image], b[image], "", found)
        for line in found:  # ".experts.ela.score: ..." counts for "experts.ela"
            differing[".".join(line.split(":")[0].split(".")[1:3]) or "load"] += 1
        if found:
            print(Path(image).name, *("   " + line for line in found[:12]), sep="\n")
    print(f"\n{len(shared)} images compared; differing lines per part: {dict(differing) or 0}")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_save = sub.add_parser("save")
    p_save.add_argument("folder", type=Path)
    p_save.add_argument("--extra", type=Path, nargs="*", default=[], help="more images")
    p_cmp = sub.add_parser("compare")
    p_cmp.add_argument("before", type=Path)
    p_cmp.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "save":
        if not (SHARED / "manifest.csv").is_file():
            print(f"no data at {SHARED}: set FORENSCOPE_SHARED_DATA", file=sys.stderr)
            return 2
        save(args.folder, args.extra)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
