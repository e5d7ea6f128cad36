"""k-shot in-context examples: a user pool of labelled real/fake images, drawn reproducibly.

Stage 1 shows each example with its yes/no answer. Stage 2 shows forged examples with an answer
built from the pool manifest's truth (its `family`, `scope` and `mask` columns): the method
(gan/diffusion), the scope (global/local), and where (the mask's box and 3x3 cell). It is a
truthful answer in the requested shape, not a hand-written analysis: what it cannot know (the
forged content, the traces) it says it does not state.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from ..models.cache import file_sha256
from .frame import cell_words, mask_box, mask_cell

PoolLabel = Literal["real", "fake"]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_FAKE_WORDS = {"fake", "1", "yes", "ai_generated", "tampered", "generated", "synthetic"}
_REAL_WORDS = {"real", "0", "no", "authentic", "pristine"}


@dataclass(frozen=True)
class Example:
    path: Path
    label: PoolLabel
    family: str = ""  # manifest's generation family (gan, diffusion, edit, ...), if given
    scope: str = ""  # global | local, if given
    mask: Path | None = None  # the forged area, if given

    @property
    def id(self) -> str:
        return f"{self.label}/{self.path.name}"

    @property
    def answer(self) -> str:
        """The assistant turn shown after this example's image (stage-1 answer)."""
        return "yes" if self.label == "fake" else "no"

    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def has_stage2_truth(self) -> bool:
        return self.label == "fake" and self.scope in ("global", "local")

    def stage2_answer(self) -> str:
        """The stage-2 JSON answer for this forged example, from the manifest's truth."""
        method = self.family if self.family in ("gan", "diffusion") else "other"
        where: dict[str, Any] = {"relative": "", "absolute": "the whole frame"}
        if self.scope == "local":
            where = _mask_location(self.mask) if self.mask else {"relative": "", "absolute": ""}
        content = "the whole image is generated" if self.scope == "global" else "a local edit"
        answer = {
            "location": where,
            "forged_content": content,
            "visible_traces": [],
            "method": method if self.family else "unknown",
            "scope": self.scope,
            "reasoning": "Example answer from the example's known ground truth (method, scope "
            "and forged area); content and traces are not stated.",
            "cited_evidence": [],
        }
        return json.dumps(answer)


def _mask_location(mask_path: Path) -> dict[str, Any]:
    from PIL import Image

    with Image.open(mask_path) as im:
        mask = np.asarray(im.convert("L")) > 127
    cell, box = mask_cell(mask), mask_box(mask)
    if cell is None or box is None:
        return {"relative": "", "absolute": ""}
    return {"relative": "", "absolute": f"{cell_words(cell)} of the frame", "box": box}


def _label(word: str, where: str) -> PoolLabel:
    w = word.strip().lower()
    if w in _FAKE_WORDS:
        return "fake"
    if w in _REAL_WORDS:
        return "real"
    raise ConfigError(f"{where}: label {word!r} is neither real nor fake")


class ExamplePool:
    """Labelled images. Build from a folder with `real/` and `fake/` subfolders, or a manifest
    (CSV with `path,label` columns, or a JSON list of {"path", "label"}); relative paths are
    resolved against the manifest's folder."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = sorted(examples, key=lambda e: (e.label, str(e.path)))

    @classmethod
    def from_folder(cls, root: str | Path) -> ExamplePool:
        root = Path(root)
        found = [
            Example(p, label)
            for label in ("real", "fake")
            for p in sorted((root / label).glob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not found:
            raise ConfigError(f"{root}: no images under real/ or fake/")
        return cls(found)

    @classmethod
    def from_manifest(cls, manifest: str | Path) -> ExamplePool:
        manifest = Path(manifest)
        text = manifest.read_text(encoding="utf-8")
        rows: list[dict[str, str]]
        if manifest.suffix.lower() == ".json":
            rows = [{k: str(v) for k, v in r.items()} for r in json.loads(text)]
        else:
            rows = list(csv.DictReader(text.splitlines()))
        out = []
        for i, row in enumerate(rows):
            if "path" not in row or "label" not in row:
                raise ConfigError(f"{manifest}: row {i + 1} needs 'path' and 'label'")
            mask = (row.get("mask") or "").strip()
            out.append(
                Example(
                    _under(manifest.parent, row["path"]),
                    _label(row["label"], f"{manifest} row {i + 1}"),
                    family=(row.get("family") or "").strip().lower(),
                    scope=(row.get("scope") or "").strip().lower(),
                    mask=_under(manifest.parent, mask) if mask else None,
                )
            )
        return cls(out)

    @classmethod
    def load(cls, source: str | Path) -> ExamplePool:
        return cls.from_folder(source) if Path(source).is_dir() else cls.from_manifest(source)

    def draw_stage2(
        self,
        k: int,
        seed: int = 0,
        exclude_sha256: Iterable[str] = (),
        exclude_paths: Iterable[str | Path] = (),
    ) -> list[Example]:
        """k forged examples with stage-2 truth (a manifest with `scope`, and `family`/`mask`
        where known), the same draw for the same (k, seed); never the query itself."""
        if k <= 0:
            return []
        shas, paths = set(exclude_sha256), {_resolved(p) for p in exclude_paths}
        usable = [
            ex
            for ex in self.examples
            if ex.has_stage2_truth
            and _resolved(ex.path) not in paths
            and not (shas and ex.sha256() in shas)
        ]
        if k > len(usable):
            raise ConfigError(
                f"stage-2 k={k} needs {k} forged pool images with a scope column (a manifest "
                f"with family, scope and mask); the pool has {len(usable)}"
            )
        return random.Random(f"stage2:{seed}:{k}").sample(usable, k)

    def draw(
        self,
        k: int,
        seed: int = 0,
        exclude_sha256: str | Iterable[str] | None = None,
        exclude_paths: Iterable[str | Path] = (),
    ) -> list[Example]:
        """k examples, balanced real/fake when possible, same draw for the same (k, seed).

        The query image is never its own example: pass every identity it has. The bytes a
        model is sent are often a re-encoded copy (eval's alignment, the image policy), so the
        hash of those bytes alone does not find the pool file; the original file's sha256 or
        its path does.
        """
        if k <= 0:
            return []
        shas = {exclude_sha256} if isinstance(exclude_sha256, str) else set(exclude_sha256 or ())
        paths = {_resolved(p) for p in exclude_paths}
        rng = random.Random(f"{seed}:{k}")
        by_label: dict[PoolLabel, list[Example]] = {"real": [], "fake": []}
        for ex in self.examples:
            if _resolved(ex.path) in paths or (shas and ex.sha256() in shas):
                continue
            by_label[ex.label].append(ex)
        if k > len(by_label["real"]) + len(by_label["fake"]):
            raise ConfigError(f"k={k} examples requested but the pool has fewer usable images")
        want = {"real": k // 2, "fake": k // 2}
        if k % 2:
            want[rng.choice(["real", "fake"])] += 1
        for a, b in (("real", "fake"), ("fake", "real")):  # fill a short side from the other
            short = want[a] - len(by_label[a])  # type: ignore[index]
            if short > 0:
                want[a] -= short
                want[b] += short
        chosen = [ex for lab in ("real", "fake") for ex in rng.sample(by_label[lab], want[lab])]
        rng.shuffle(chosen)
        return chosen


def _under(root: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _resolved(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)
