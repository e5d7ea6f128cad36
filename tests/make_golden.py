"""Golden outputs of the five signal experts, tied to their spec versions.

    python tests/make_golden.py            # write goldens missing for the current versions
    python tests/make_golden.py --force ela  # rewrite one (only after checking its output)

Each `tests/golden/<expert>-<version>.npz` holds the score, the heatmap box-averaged to
32x32 (float16), the heatmap's full shape, the evidence kinds in order, and the sha256 of the
judging input it came from (tests/judging_inputs.py). The contract test recomputes them and
compares (within SCORE_ATOL and HEATMAP_ATOL): an output that changes without a version bump
fails; a version bump without a new golden fails with the command above. Writing a golden
removes the expert's files of older versions.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
GOLDEN_SIDE = 32
SCORE_ATOL = 1e-3
HEATMAP_ATOL = 0.01  # on the 32x32 box average; float16 rounding is <= 0.0005 in [0, 1]
REGENERATE = "python tests/make_golden.py"


class GoldenMismatch(AssertionError):
    """An expert's output and its golden disagree (or the golden is missing or stale)."""


@dataclass(frozen=True)
class Golden:
    score: float | None
    heatmap: np.ndarray | None  # (GOLDEN_SIDE, GOLDEN_SIDE) float16
    shape: tuple[int, ...]  # the full heatmap's shape, () without one
    evidence: tuple[str, ...]  # evidence kinds, in order
    input_sha256: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        empty = np.zeros((0, 0), np.float16)
        np.savez_compressed(
            path,
            score=np.float64(np.nan if self.score is None else self.score),
            heatmap=empty if self.heatmap is None else self.heatmap,
            shape=np.asarray(self.shape, np.int64),
            evidence=np.asarray(self.evidence, np.str_),
            input_sha256=np.str_(self.input_sha256),
        )

    @classmethod
    def load(cls, path: Path) -> Golden:
        with np.load(path) as z:
            score = float(z["score"])
            heatmap = z["heatmap"]
            return cls(
                score=None if np.isnan(score) else score,
                heatmap=None if heatmap.size == 0 else heatmap,
                shape=tuple(int(v) for v in z["shape"]),
                evidence=tuple(str(v) for v in z["evidence"]),
                input_sha256=str(z["input_sha256"]),
            )


def golden_path(name: str, version: str, directory: Path = GOLDEN_DIR) -> Path:
    return directory / f"{name}-{version}.npz"


def spec_version(name: str) -> str:
    from forenscope.experts import expert_classes

    return expert_classes()[name].spec.version


def compute(name: str) -> Golden:
    """Run the expert on its judging input and reduce the result to a Golden."""
    from forenscope.experts import get_expert
    from judging_inputs import SIGNAL_CASES

    case = SIGNAL_CASES[name]
    image = case.image()
    result = get_expert(name).analyze(image)
    if result.score is None:
        raise GoldenMismatch(f"{name} abstained on its golden input: {result.abstain_reason}")
    small = None
    if result.heatmap is not None:
        pil = Image.fromarray(result.heatmap.astype(np.float32), mode="F")
        small = np.asarray(pil.resize((GOLDEN_SIDE, GOLDEN_SIDE), Image.Resampling.BOX))
        small = small.astype(np.float16)
    shape = () if result.heatmap is None else tuple(result.heatmap.shape)
    kinds = tuple(e.kind for e in result.evidence)
    return Golden(result.score, small, shape, kinds, hashlib.sha256(image.data).hexdigest())


def compare(name: str, got: Golden, directory: Path = GOLDEN_DIR) -> None:
    """Raise GoldenMismatch, saying what to do, unless `got` matches the golden of the
    expert's current version."""
    version = spec_version(name)
    path = golden_path(name, version, directory)
    if not path.is_file():
        others = sorted(p.name for p in directory.glob(f"{name}-*.npz"))
        raise GoldenMismatch(
            f"no golden output for {name} {version} in {directory} (found: "
            f"{', '.join(others) or 'none'}). If you bumped its version on purpose, check its "
            f"new output, then run `{REGENERATE} {name}`"
        )
    want = Golden.load(path)
    bump = (
        f"{name}'s output changed without a version bump: fix the regression, or bump "
        f"spec.version of {name} and run `{REGENERATE} {name}`"
    )
    if got.input_sha256 != want.input_sha256:
        raise GoldenMismatch(
            f"the golden input of {name} is no longer the same file (tests/judging_inputs.py, "
            f"forenscope.forgeries or the JPEG encoder changed); once the expert is known "
            f"good, run `{REGENERATE} --force {name}`"
        )
    if (got.score is None) != (want.score is None) or (
        got.score is not None and abs(got.score - float(want.score or 0.0)) > SCORE_ATOL
    ):
        raise GoldenMismatch(f"{bump} (score {got.score} vs golden {want.score})")
    if got.evidence != want.evidence:
        raise GoldenMismatch(f"{bump} (evidence kinds {got.evidence} vs golden {want.evidence})")
    if got.shape != want.shape or (got.heatmap is None) != (want.heatmap is None):
        raise GoldenMismatch(f"{bump} (heatmap shape {got.shape} vs golden {want.shape})")
    if got.heatmap is not None and want.heatmap is not None:
        diff = float(np.abs(got.heatmap.astype(np.float32) - want.heatmap).max())
        if diff > HEATMAP_ATOL:
            raise GoldenMismatch(f"{bump} (32x32 heatmap differs by up to {diff:.3f})")


def stale_goldens(directory: Path = GOLDEN_DIR) -> list[Path]:
    """Golden files that belong to no current (signal expert, version) pair."""
    from judging_inputs import SIGNAL_CASES

    current = {golden_path(n, spec_version(n), directory).name for n in SIGNAL_CASES}
    return sorted(p for p in directory.glob("*.npz") if p.name not in current)


def write(names: list[str], force: bool, directory: Path = GOLDEN_DIR) -> list[str]:
    """Write the goldens of `names` (missing ones only unless `force`); returns what it did."""
    done: list[str] = []
    for name in names:
        path = golden_path(name, spec_version(name), directory)
        if path.is_file() and not force:
            done.append(f"kept {path.name} (exists; --force rewrites it)")
            continue
        compute(name).save(path)
        done.append(f"wrote {path.name} ({path.stat().st_size:,} bytes)")
        for old in directory.glob(f"{name}-*.npz"):
            if old != path:
                old.unlink()
                done.append(f"removed {old.name} (an older version)")
    return done


def main(argv: list[str] | None = None) -> int:
    from judging_inputs import SIGNAL_CASES

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("experts", nargs="*", help=f"default: all of {', '.join(SIGNAL_CASES)}")
    parser.add_argument("--force", action="store_true", help="rewrite existing goldens")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.experts) - set(SIGNAL_CASES))
    if unknown:
        parser.error(f"no golden input for {', '.join(unknown)}; known: {', '.join(SIGNAL_CASES)}")
    for line in write(args.experts or list(SIGNAL_CASES), args.force):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
