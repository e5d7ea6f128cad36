"""The fused tamper map at the shipped threshold (0.5), per source, as stored and laundered.

    python benchmarks/bench_localization.py [--data ../shared/data] [--jobs 1] [--cache DIR]

Images (`forenscope.train.map_data`): every real forgery with a mask (hifi-ifdl sources, NoSo,
CASIA v2 namtpham, MagicInpainter), the AI inpaintings (`inpaint-anything`: LaMa and SD-2, a
class of their own), untouched native-resolution camera photos (straight-from-camera JPEGs not
used to train the learned localizer, plasma and lomiri wallpapers: the false-alarm target) and
other untouched photos (BSDS500 val, Kodak24, NoSo / Inpaint-Anything / MagicInpainter
originals: calibration validation only). Variants: as stored; laundered (resize 0.5-1.0 + JPEG
q 70-90, seeded by the path); JPEG q 90 for the Inpaint-Anything pairs (their originals are
JPEG, their edits PNG: `jpeg90` is the format-aligned comparison).

Every map is scored at the fixed 0.5 a user gets (F1, IoU), beside the oracle F1 (best
per-image threshold, chosen with the ground truth: an upper bound, not deployable) and the F1
of flagging every pixel. Untouched photos: median and mean share of pixels flagged, and the
share of photos with more than 1% flagged. Maps:
- `handset`: the hand-set weighted mean (the default before 2026-12);
- `fitted LOSO`: the fitted map refitted with the shipped recipe without the source of the
  image (leave-one-source-out: the honest estimate for a source it never saw);
- `fitted shipped`: the shipped weights (fitted on every source: in-sample, context only);
- `learned_localizer alone`: the retrained localizer's own map, for context.
Expert outputs are cached per image, variant and expert version under --cache (a retrained
expert is re-run alone). Scoring is at the cache's working size (longer side 512).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from forenscope.fusion import map_fitted
from forenscope.train import map_calibration as mc
from forenscope.train import map_data as md
from forenscope.train import map_fit as mf

MapName = str


def all_scores(entries: Sequence[md.Entry]) -> dict[MapName, list[mc.Score]]:
    """Scores of every map on every entry (the LOSO refit takes most of the time)."""
    shipped = map_fitted.load_model()
    assert shipped is not None, "fusion/weights/map_fitted.json is missing"
    cfg = mf.config_of(json.loads(map_fitted.WEIGHTS_FILE.read_text(encoding="utf-8")))
    folds = mf.loso(mf.featurise_all(entries, cfg), cfg)
    return {
        "handset": mc.score_all(entries, lambda e: mc.fused(e, "handset")),
        "fitted LOSO": mc.score_all(entries, lambda e: mf.probability(folds[e.sample.source], e)),
        "fitted shipped": mc.score_all(entries, lambda e: mf.probability(shipped, e)),
        "learned_localizer alone": mc.score_all(entries, localizer_map),
    }


def localizer_map(entry: md.Entry) -> np.ndarray | None:
    """The learned localizer's own probability map (its threshold is 0.5 too)."""
    out = entry.experts.get("learned_localizer")
    return out.heatmap if out is not None and out.judged else None


def _mean(scores: Sequence[mc.Score], key: str) -> float:
    return float(np.mean([getattr(s, key) for s in scores])) if scores else float("nan")


def _group(
    scores: Sequence[mc.Score], key: Callable[[mc.Score], tuple[str, ...]]
) -> dict[tuple[str, ...], list[mc.Score]]:
    out: dict[tuple[str, ...], list[mc.Score]] = defaultdict(list)
    for s in scores:
        out[key(s)].append(s)
    return dict(sorted(out.items()))


def print_overall(by_map: dict[MapName, list[mc.Score]]) -> None:
    print("\n## Forged images: F1 at the shipped threshold 0.5\n")
    print("| class | variant | n | map | F1@0.5 | IoU@0.5 | oracle F1 | all-forged F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, scores in by_map.items():
        for (group, variant), ss in _group(
            [s for s in scores if s.forged], lambda s: (s.group, s.variant)
        ).items():
            print(
                f"| {group} | {variant} | {len(ss)} | {name} | {_mean(ss, 'f1'):.3f} | "
                f"{_mean(ss, 'iou'):.3f} | {_mean(ss, 'oracle'):.3f} | "
                f"{_mean(ss, 'all_forged'):.3f} |"
            )


def print_sources(by_map: dict[MapName, list[mc.Score]], before: str, after: str) -> None:
    print(f"\n## Per source: F1@0.5, {before} -> {after} (pass = {after} >= all-forged)\n")
    print("| source | variant | n | F1@0.5 | IoU@0.5 | oracle F1 | all-forged F1 | pass |")
    print("|---|---|---|---|---|---|---|---|")
    old = _group([s for s in by_map[before] if s.forged], lambda s: (s.source, s.variant))
    new = _group([s for s in by_map[after] if s.forged], lambda s: (s.source, s.variant))
    for (source, variant), ss in new.items():
        o = old[(source, variant)]
        ok = _mean(ss, "f1") >= _mean(ss, "all_forged")
        print(
            f"| {source} | {variant} | {len(ss)} | {_mean(o, 'f1'):.3f} -> {_mean(ss, 'f1'):.3f} "
            f"| {_mean(o, 'iou'):.3f} -> {_mean(ss, 'iou'):.3f} | {_mean(o, 'oracle'):.3f} -> "
            f"{_mean(ss, 'oracle'):.3f} | {_mean(ss, 'all_forged'):.3f} | "
            f"{'yes' if ok else '**no**'} |"
        )


def print_untouched(by_map: dict[MapName, list[mc.Score]], group: str) -> None:
    print(f"\n## Untouched photos ({group}): share of pixels flagged at 0.5\n")
    print("| source | variant | n | map | median flagged | mean flagged | photos > 1% flagged |")
    print("|---|---|---|---|---|---|---|")
    for name, scores in by_map.items():
        picked = [s for s in scores if not s.forged and s.group == group]
        groups = _group(picked, lambda s: (s.source, s.variant))
        for variant in sorted({s.variant for s in picked}):
            groups[("**all**", variant)] = [s for s in picked if s.variant == variant]
        for (source, variant), ss in groups.items():
            med, mean, over = mc.flagged_summary(ss)
            print(
                f"| {source} | {variant} | {len(ss)} | {name} | {100 * med:.2f}% | "
                f"{100 * mean:.2f}% | {100 * over:.0f}% |"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--cache", type=Path, default=md.DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"no manifest in {args.data}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    entries = md.load_study(args.data, args.cache, args.jobs)
    ran = time.perf_counter()
    by_map = all_scores(entries)
    print(f"\n{len(entries)} image variants; map: {map_fitted.map_mode()} by default")
    print_overall(by_map)
    print_sources(by_map, "handset", "fitted LOSO")
    print_untouched(by_map, "camera")
    print_untouched(by_map, "clean_extra")
    print(
        f"\nexperts (cache fill) {ran - start:.0f} s, scoring and LOSO refits "
        f"{time.perf_counter() - ran:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
