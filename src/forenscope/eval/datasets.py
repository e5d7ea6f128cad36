"""Datasets for `forenscope eval`: manifests (CSV or JSONL in the schema of
`../shared/data/manifest.csv`), folder layouts, column filters, seeded sampling, ground-truth masks.

Folder layout (no manifest): `real/**`, `fake/<generator>/**` (files directly in `fake/` get
generator `unknown`), `tampered/**` with masks in `masks/<stem>.*` (or `<stem>_mask.*`,
`<stem>_gt.*`). Such rows carry no reference sha256: the run records the hash it computed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

MANIFEST_COLUMNS = (
    "path", "label", "generator", "family", "scope", "mask", "source", "licence",
    "width", "height", "format", "sha256",
)  # fmt: skip
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
_FAMILIES = {
    "gan": ("biggan", "cyclegan", "gaugan", "stargan", "stylegan", "progan", "gan"),
    "diffusion": ("sd", "stable", "dalle2", "dall-e-2", "midjourney", "ldm", "glide", "disco",
                  "diffusion", "majesty", "imagen", "flux", "adm"),
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    root: Path
    path: str
    label: str
    generator: str
    family: str
    scope: str
    mask: str
    source: str
    format: str
    sha256: str
    licence: str = ""
    width: int = 0
    height: int = 0
    row: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def file(self) -> Path:
        return self.root / self.path

    @property
    def mask_file(self) -> Path | None:
        return self.root / self.mask if self.mask else None

    @property
    def is_fake(self) -> bool:
        """The binary target: anything not `real` (AI-generated or tampered) is positive."""
        return self.label != "real"


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


def sample_from_row(root: Path, row: dict[str, str]) -> Sample:
    names = ("path", "label", "generator", "family", "scope", "mask", "source", "format")
    text = {k: str(row.get(k) or "") for k in (*names, "sha256", "licence")}
    return Sample(
        root=root,
        **text,
        width=_int(row.get("width")),
        height=_int(row.get("height")),
        row={k: "" if v is None else str(v) for k, v in row.items()},
    )


def read_rows(manifest: Path) -> list[dict[str, str]]:
    """Rows of a manifest: CSV (header line) or JSONL (one object per line)."""
    with manifest.open(newline="", encoding="utf-8") as f:
        if manifest.suffix.lower() in (".jsonl", ".ndjson"):
            rows = [json.loads(line) for line in f if line.strip()]
            rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
        else:
            rows = list(csv.DictReader(f))
    if rows and not {"path", "label"} <= set(rows[0]):
        missing = {"path", "label"} - set(rows[0])
        raise ValueError(f"{manifest}: missing column(s) {sorted(missing)}")
    if not rows and manifest.suffix.lower() not in (".jsonl", ".ndjson"):
        with manifest.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if not {"path", "label"} <= set(header):
            raise ValueError(
                f"{manifest}: missing column(s) {sorted({'path', 'label'} - set(header))}"
            )
    return rows


def load_manifest(manifest: Path, **filters: str | set[str]) -> list[Sample]:
    """Rows of a manifest CSV/JSONL, optionally filtered by column value(s), e.g.
    label="tampered"."""
    root = manifest.parent
    return [
        sample_from_row(root, row)
        for row in read_rows(manifest)
        if all(_matches(row.get(k, ""), v) for k, v in filters.items())
    ]


def _matches(value: str, wanted: str | set[str]) -> bool:
    return value in wanted if isinstance(wanted, set) else value == wanted


def family_of(generator: str) -> str:
    g = generator.lower()
    for family, words in _FAMILIES.items():
        if any(g == w or g.startswith(w) for w in words):
            return family
    return "unknown"


def _find_mask(masks: Path, stem: str) -> Path | None:
    for cand in sorted(masks.glob(f"{stem}*")) if masks.is_dir() else []:
        if (
            cand.stem in (stem, f"{stem}_mask", f"{stem}_gt")
            and cand.suffix.lower() in IMAGE_SUFFIXES
        ):
            return cand
    return None


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(root: Path) -> list[Sample]:
    """Samples of a `real/`, `fake/<generator>/`, `tampered/` + `masks/` folder layout."""
    rows: list[dict[str, str]] = []
    for p in _images(root / "real"):
        rows.append({"path": str(p.relative_to(root)), "label": "real", "generator": "camera",
                     "family": "camera", "scope": "none"})  # fmt: skip
    for p in _images(root / "fake"):
        rel = p.relative_to(root / "fake")
        gen = rel.parts[0] if len(rel.parts) > 1 else "unknown"
        rows.append({"path": str(p.relative_to(root)), "label": "fake", "generator": gen,
                     "family": family_of(gen), "scope": "global"})  # fmt: skip
    for p in _images(root / "tampered"):
        mask = _find_mask(root / "masks", p.stem)
        rows.append({"path": str(p.relative_to(root)), "label": "tampered", "generator": "unknown",
                     "family": "edit", "scope": "local",
                     "mask": str(mask.relative_to(root)) if mask else ""})  # fmt: skip
    if not rows:
        raise ValueError(f"{root}: no images under real/, fake/ or tampered/")
    for r in rows:
        r.setdefault("source", root.name)
        r["format"] = ""
    return [sample_from_row(root, r) for r in rows]


def load_dataset(source: Path) -> list[Sample]:
    """A manifest file (CSV/JSONL) or a folder (its manifest.csv when present, else the layout)."""
    if source.is_dir():
        for name in ("manifest.csv", "manifest.jsonl"):
            if (source / name).is_file():
                return load_manifest(source / name)
        return load_folder(source)
    return load_manifest(source)


@dataclass(frozen=True)
class Filter:
    """`column=v1,v2` (keep rows whose value is one of them) or `column!=v1,v2` (drop them)."""

    column: str
    values: frozenset[str]
    negate: bool

    @classmethod
    def parse(cls, text: str) -> Filter:
        negate = "!=" in text
        col, sep, vals = text.partition("!=" if negate else "=")
        if not sep or not col.strip():
            raise ValueError(f"filter {text!r}: expected COLUMN=VALUE[,VALUE] or COLUMN!=VALUE")
        return cls(col.strip(), frozenset(v.strip() for v in vals.split(",")), negate)

    def keep(self, sample: Sample) -> bool:
        value = sample.row.get(self.column, str(getattr(sample, self.column, "")))
        return (value in self.values) != self.negate

    def __str__(self) -> str:
        return f"{self.column}{'!=' if self.negate else '='}{','.join(sorted(self.values))}"


def select(
    samples: Sequence[Sample],
    filters: Iterable[Filter] = (),
    *,
    sample: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Sample]:
    """Filter, then a seeded random subset of `sample` rows (kept in manifest order), then the
    first `limit` rows. Unknown filter columns are an error (a typo must not select nothing)."""
    filters = list(filters)
    known = set(samples[0].row) | set(Sample.__dataclass_fields__) if samples else set()
    for f in filters:
        if samples and f.column not in known:
            raise ValueError(f"filter on unknown column {f.column!r}; columns: {sorted(known)}")
    out = [s for s in samples if all(f.keep(s) for f in filters)]
    if sample is not None and sample < len(out):
        keep = set(random.Random(seed).sample(range(len(out)), sample))
        out = [s for i, s in enumerate(out) if i in keep]
    return out[:limit] if limit is not None else out


def load_mask(path: Path) -> np.ndarray:
    """A ground-truth mask as bool (H, W): white (>= 128) in any channel = manipulated.

    This follows the data README: JPEG masks are thresholded at 128, RGB masks count a pixel
    when any channel is >= 128.
    """
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L") if im.mode in ("1", "L", "P") else im.convert("RGB"))
    white = arr >= 128
    return np.asarray(white.any(axis=-1) if white.ndim == 3 else white, dtype=bool)
