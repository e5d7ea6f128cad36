"""Expert summaries for the verdict protocol: every image as stored and laundered, cached.

    python -m forenscope.train.verdict_data --data ../shared/data --jobs 2

For each manifest row (CIFAKE's 32 px images left out: no product input looks like them) the
default experts run on two versions of the file:

- `stored`: the bytes as the user has them, at native resolution;
- `laundered`: what social media makes of it, seeded per file: decoded, resized by a factor in
  [0.5, 1.0] and re-saved as JPEG at quality 70-90 without metadata. Both classes go through
  the same steps, so a format difference between classes cannot survive it.

Each row of the JSON-lines cache holds the sample's labels, the container facts of the bytes
the experts saw (for the format-only baseline) and `fusion.summary.summarise_all` of the
results. The cache is keyed by (path, variant); `--refresh NAMES` re-runs only those experts
and keeps the rest, so a retrained expert does not cost a full pass. A killed run resumes.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..models.cache import default_cache_dir

VARIANTS = ("stored", "laundered")
LAUNDER_SCALE = (0.5, 1.0)
LAUNDER_QUALITY = (70, 90)
SKIP_SOURCES = frozenset({"cifake"})
DEFAULT_CACHE = default_cache_dir() / "verdict-protocol.jsonl"


def launder(data: bytes, key: str) -> bytes:
    """A social-media style re-save, seeded by `key`: resize 0.5-1.0, JPEG q 70-90, no metadata."""
    rng = random.Random(f"launder:{key}")
    factor = rng.uniform(*LAUNDER_SCALE)
    quality = rng.randint(*LAUNDER_QUALITY)
    with Image.open(io.BytesIO(data)) as src:
        im = src.convert("RGB")
    size = (max(16, round(im.width * factor)), max(16, round(im.height * factor)))
    im = im.resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, subsampling=2)
    return out.getvalue()


@dataclass(frozen=True)
class Job:
    root: str
    path: str
    variant: str
    experts: tuple[str, ...] | None  # None = the default experts


def run_job(job: Job) -> dict[str, Any]:
    """Expert summaries and container facts of one (image, variant); errors become values."""
    from ..eval.baseline import container_features
    from ..fusion.summary import summarise_all
    from ..io import load_image
    from ..pipeline import run_experts

    data = (Path(job.root) / job.path).read_bytes()
    try:
        if job.variant == "laundered":
            data = launder(data, job.path)
        image = load_image(data)
        results = run_experts(image, job.experts, threads=1)
    except Exception as exc:  # one bad file must not stop the pass
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    out: dict[str, Any] = {
        "container": container_features(data),
        "size": [image.width, image.height],
        "experts": summarise_all(results),
    }
    if job.experts is None or "clip_detector" in job.experts:
        out["clip_embed"] = clip_embedding(image.rgb)
    return out


def clip_embedding(rgb: Any) -> list[float] | None:
    """The unit CLIP embedding the clip_detector's heads read (None without the encoder), so
    the protocol can refit the head without each held-out source (`train/verdict_clip.py`)."""
    from ..errors import ModelError
    from ..experts.clip_detector import _load
    from ..learned.detector import aligned_tensor, unit

    try:
        model = _load()
        embeds = model.encoder.encode(aligned_tensor([rgb]), tokens=False).embeds
    except ModelError:
        return None
    return [round(float(v), 5) for v in unit(embeds.astype("float64"))[0]]


def read_cache(cache: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows by (path, variant); a later row for the same key replaces an earlier one."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["path"], row["variant"])] = row
    return rows


def samples(data: Path) -> list[Any]:
    from ..eval.datasets import load_manifest

    return [s for s in load_manifest(data / "manifest.csv") if s.source not in SKIP_SOURCES]


def _todo(
    rows: dict[tuple[str, str], dict[str, Any]],
    items: Sequence[Any],
    refresh: tuple[str, ...],
) -> Iterator[Job]:
    for s in items:
        for variant in VARIANTS:
            row = rows.get((s.path, variant))
            if row is None or "error" in row:
                yield Job(str(s.root), s.path, variant, None)
            elif refresh:
                yield Job(str(s.root), s.path, variant, refresh)


def extract(data: Path, cache: Path, jobs: int, refresh: tuple[str, ...] = ()) -> None:
    """Fill the cache; prints progress on stderr."""
    from tqdm import tqdm

    items = samples(data)
    by_path = {s.path: s for s in items}
    rows = read_cache(cache)
    todo = list(_todo(rows, items, refresh))
    # Small files first: most of the table is ready early; the large camera files come last.
    todo.sort(key=lambda j: by_path[j.path].width * by_path[j.path].height)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("a", encoding="utf-8") as out, ProcessPoolExecutor(jobs) as pool:
        done = pool.map(run_job, todo, chunksize=1)
        for job, result in tqdm(zip(todo, done, strict=True), total=len(todo), desc="experts"):
            s = by_path[job.path]
            row = {
                "path": s.path,
                "variant": job.variant,
                "source": s.source,
                "label": s.label,
                "generator": s.generator,
                "family": s.family,
                "scope": s.scope,
            }
            old = rows.get((s.path, job.variant))
            if job.experts is not None and old is not None and "error" not in result:
                result = {**old, **result, "experts": {**old["experts"], **result["experts"]}}
            row.update({k: v for k, v in result.items() if k not in row})
            out.write(json.dumps(row) + "\n")
            out.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--refresh", default="", help="comma-separated experts to re-run everywhere")
    args = p.parse_args(argv)
    if not (args.data / "manifest.csv").exists():
        print(f"no manifest.csv in {args.data}", file=sys.stderr)
        return 2
    refresh = tuple(n for n in args.refresh.split(",") if n)
    extract(args.data, args.cache, args.jobs, refresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
