"""The images the fused tamper map is calibrated and judged on, and a cache of expert outputs.

Every image is analysed once per *variant* by the default experts (as `analyze_image` does)
and each expert's score and map are stored at a small working size, one file per expert, so
a retrained expert is re-run alone and the map calibration is refitted in seconds.

Variants: `stored` (the file as it is), `laundered` (resize 0.5-1.0 then JPEG q 70-90, seeded
by the path: what a photo goes through on the way to a user) and `jpeg90` (JPEG q 90 at full
size: the format-aligned view of the Inpaint-Anything pairs, whose originals are JPEG and whose
edits are PNG).

Groups (by manifest source): `forged` = real forgeries with masks; `ai_inpaint` = the
Inpaint-Anything edits (LaMa, SD-2); `camera` = untouched native-resolution photos, the
false-alarm target; `clean_extra` = other untouched photos, used only as calibration
validation (never reported as the target).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..eval.datasets import Sample, load_manifest, load_mask
from ..map_geometry import working_size
from .camera_split import STRAIGHT_FROM_CAMERA, camera_part

WORK_SIDE = 512
DEFAULT_CACHE = Path("/tmp/forenscope-map-study")  # outside the repository
VARIANTS = ("stored", "laundered", "jpeg90")
AI_INPAINT_SOURCES = frozenset({"inpaint-anything"})
CAMERA_SOURCES = frozenset(
    {
        "metadata-extractor-images",
        "exif-samples",
        "plasma-wallpapers",
        "debian-lomiri-wallpapers-16.04",
        "debian-lomiri-wallpapers-20.04",
    }
)
CLEAN_EXTRA_SOURCES = frozenset(
    {"bsds500-val", "noso", "kodak24", "inpaint-anything", "magicinpainter"}
)


def group_of(sample: Sample) -> str | None:
    """forged | ai_inpaint | camera | clean_extra, or None for rows this study does not use."""
    if sample.label == "tampered" and sample.mask:
        return "ai_inpaint" if sample.source in AI_INPAINT_SOURCES else "forged"
    if sample.label != "real":
        return None
    if sample.source in CAMERA_SOURCES:
        return "camera"
    return "clean_extra" if sample.source in CLEAN_EXTRA_SOURCES else None


def usable(sample: Sample) -> bool:
    """False for camera photos the learned localizer trained or was validated on: its maps on
    them would look cleaner than on any new photo."""
    return sample.source not in STRAIGHT_FROM_CAMERA or camera_part(sample.path) == "held_out"


def study_samples(data: Path) -> list[Sample]:
    """Every manifest row in one of the groups that the localizer never trained on, by path."""
    rows = load_manifest(data / "manifest.csv")
    picked = (s for s in rows if group_of(s) is not None and usable(s))
    return sorted(picked, key=lambda s: s.path)


def launder(rgb: np.ndarray, key: str) -> tuple[bytes, float, int]:
    """Resize by 0.5-1.0 (Lanczos) and save as JPEG q 70-90, both drawn from the path."""
    rng = np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
    scale, quality = float(rng.uniform(0.5, 1.0)), int(rng.integers(70, 91))
    im = Image.fromarray(rgb)
    size = (max(16, round(im.width * scale)), max(16, round(im.height * scale)))
    buf = io.BytesIO()
    im.resize(size, Image.Resampling.LANCZOS).save(buf, "JPEG", quality=quality, subsampling=2)
    return buf.getvalue(), scale, quality


def variant_bytes(sample: Sample, variant: str) -> bytes:
    """The file's bytes as stored, laundered or re-saved as JPEG q 90 (orientation applied)."""
    raw = sample.file.read_bytes()
    if variant == "stored":
        return raw
    from ..io import load_image

    rgb = load_image(raw).rgb
    if variant == "laundered":
        return launder(rgb, sample.path)[0]
    if variant == "jpeg90":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90, subsampling=2)
        return buf.getvalue()
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def shrink(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Box-filter resize of a float map (a mask becomes the forged share of each pixel)."""
    im = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
    return np.asarray(im.resize((shape[1], shape[0]), Image.Resampling.BOX), dtype=np.float32)


@dataclass
class ExpertOut:
    """One expert's output on one image variant, its map at the working size."""

    score: float | None
    confidence: float
    judged: bool
    targets: str
    heatmap: np.ndarray | None


@dataclass
class Entry:
    """All cached outputs of one image variant."""

    sample: Sample
    group: str
    variant: str
    truth: np.ndarray  # forged share per working pixel (zeros for untouched photos)
    experts: dict[str, ExpertOut] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # (height, width) of the analysed image

    @property
    def forged(self) -> bool:
        return bool(self.truth.max() >= 0.5)


def _key(sample: Sample) -> str:
    return hashlib.sha256(sample.path.encode()).hexdigest()[:16]


def cache_file(cache: Path, sample: Sample, variant: str, expert: str, tag: str) -> Path:
    return cache / variant / _key(sample) / f"{expert}@{tag}.npz"


def run_and_cache(
    sample: Sample, variant: str, experts: Sequence[str], tags: dict[str, str], cache: Path
) -> float:
    """Run `experts` on the variant (skipping those cached under their tag); seconds spent."""
    todo = [e for e in experts if not cache_file(cache, sample, variant, e, tags[e]).exists()]
    meta = cache / variant / _key(sample) / "meta.npz"
    if not todo and meta.exists():
        return 0.0
    from ..io import load_image
    from ..pipeline import run_experts

    start = time.perf_counter()
    image = load_image(variant_bytes(sample, variant))
    shape = working_size(image.height, image.width, WORK_SIDE)
    results = run_experts(image, todo, threads=1) if todo else []
    for r in results:
        arrays: dict[str, Any] = {
            "score": np.array(np.nan if r.score is None else r.score),
            "confidence": np.array(r.confidence),
            "judged": np.array(r.judged),
            "targets": np.array(r.targets),
        }
        if r.heatmap is not None:
            from ..fusion.localize import resize_map

            arrays["heatmap"] = resize_map(r.heatmap, *shape).astype(np.float16)
        out = cache_file(cache, sample, variant, r.expert, tags[r.expert])
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
    if not meta.exists():
        truth = np.zeros(shape, np.float32)
        if sample.mask_file is not None:
            truth = shrink(load_mask(sample.mask_file).astype(np.float32), shape)
        meta.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            meta, truth=truth.astype(np.float16), size=np.array(image.rgb.shape[:2])
        )
    return time.perf_counter() - start


def load_entry(
    sample: Sample,
    variant: str,
    experts: Sequence[str],
    tags: dict[str, str],
    cache: Path,
    *,
    strict: bool = True,
) -> Entry:
    """The cached outputs of `experts` on one variant (all must have been run). With
    `strict=False` an expert whose current tag is missing is read from its newest cached tag
    (for exploring while other experts change; never for reported numbers)."""
    with np.load(cache / variant / _key(sample) / "meta.npz") as z:
        truth = z["truth"].astype(np.float32)
        size = (int(z["size"][0]), int(z["size"][1]))
    group = group_of(sample)
    assert group is not None
    entry = Entry(sample, group, variant, truth, size=size)
    for name in experts:
        path = cache_file(cache, sample, variant, name, tags[name])
        if not strict and not path.exists():
            found = sorted(path.parent.glob(f"{name}@*.npz"), key=lambda p: p.stat().st_mtime)
            path = found[-1] if found else path
        with np.load(path) as z:
            score = float(z["score"])
            entry.experts[name] = ExpertOut(
                None if np.isnan(score) else score,
                float(z["confidence"]),
                bool(z["judged"]),
                str(z["targets"]),
                z["heatmap"].astype(np.float32) if "heatmap" in z.files else None,
            )
    return entry


def file_tag(path: Path) -> str:
    """A short content hash of a weights file: cached outputs are keyed by the weights."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.exists() else "none"


def variants_of(sample: Sample) -> tuple[str, ...]:
    """stored and laundered for all; jpeg90 too for the Inpaint-Anything pairs (format)."""
    if sample.source in AI_INPAINT_SOURCES:
        return VARIANTS
    return VARIANTS[:2]


def expert_tags(experts: Sequence[str]) -> dict[str, str]:
    """Cache tags: the weights' hash for the trained experts, the spec version otherwise."""
    from ..experts import expert_classes
    from ..learned.localizer.model import WEIGHTS

    heads = Path(__file__).resolve().parents[1] / "models" / "heads"
    classes = expert_classes()
    tags = {e: f"v{classes[e].spec.version}" for e in experts}
    if "learned_localizer" in tags:
        tags["learned_localizer"] += "-" + file_tag(WEIGHTS)
    if "clip_detector" in tags:
        for head in ("clip-generated.json", "clip-patch-composite.json"):
            tags["clip_detector"] += "-" + file_tag(heads / head)[:6]
    return tags


def _task(args: tuple[Sample, str, tuple[str, ...], dict[str, str], Path]) -> float:
    return run_and_cache(*args)


def build_cache(
    samples: Sequence[Sample], experts: Sequence[str], cache: Path, jobs: int = 1
) -> list[tuple[Sample, str]]:
    """Fill the cache for every (sample, variant); returns the pairs in a stable order."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    tags = expert_tags(experts)
    pairs = [(s, v) for s in samples for v in variants_of(s)]
    tasks = [(s, v, tuple(experts), tags, cache) for s, v in pairs]
    if jobs <= 1:
        for t in tqdm(tasks, unit="img", desc="experts"):
            _task(t)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            list(tqdm(pool.map(_task, tasks), total=len(tasks), unit="img", desc="experts"))
    return pairs


def map_experts() -> list[str]:
    """The default experts that draw a tamper map: all the fused map can use (the CLIP patch
    map targets generated content and is not part of the fused tamper map)."""
    from ..experts import expert_classes
    from ..fusion.expert_weights import TAMPER_TARGETS
    from ..pipeline import default_experts

    classes = expert_classes()
    return [
        e
        for e in default_experts()
        if classes[e].spec.produces_heatmap and classes[e].spec.targets in TAMPER_TARGETS
    ]


def load_study(data: Path, cache: Path = DEFAULT_CACHE, jobs: int = 1) -> list[Entry]:
    """Every (image, variant) of the study with all map experts' outputs, filling the cache
    first where an output is missing."""
    samples = study_samples(data)
    experts = map_experts()
    pairs = build_cache(samples, experts, cache, jobs)
    tags = expert_tags(experts)
    return [load_entry(s, v, experts, tags, cache) for s, v in pairs]


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="fill the expert-output cache of the map study")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--group", action="append", help="only these groups (repeatable)")
    args = ap.parse_args(argv)
    samples = [s for s in study_samples(args.data) if not args.group or group_of(s) in args.group]
    build_cache(samples, map_experts(), args.cache, args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
