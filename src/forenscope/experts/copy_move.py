"""Copy-move: a region of the image pasted elsewhere in the same image (translation only).

A duplicated region makes the image's high-pass content correlate with itself at the copy's
shift vector d. We find candidate shifts as the strongest peaks of the spectrally whitened
autocorrelation (one FFT; the dense counterpart of shift-vector voting in Fridrich 2003 /
Christlein 2012), then verify each candidate block by block: an 8x8 block at x and the block at
x + d must agree to within a fraction of their own texture energy. Matched blocks that form a
region of a minimum size are the source and the target (which is which cannot be told: both are
marked). Flat blocks are never matched (an empty sky matches itself anywhere), and a match
that also holds at 2d or -d, or over most of the image, is a repeating texture, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from ..io.input import ImageInput
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from ._signal_math import bbox_words, blocks, components, ramp
from .base import Expert
from .registry import register_expert

CELL = 8  # verification block (px)
MIN_SHIFT = 32  # shorter shifts are mostly a texture matching itself (fences, foliage)
N_PEAKS = 4  # autocorrelation peaks to verify
MAX_RATIO = 0.6  # block mismatch energy / texture energy below which two blocks "agree"
MAX_DETAIL_RATIO = 0.4  # the same for contrast-normalised detail (roughly 1 - correlation)
MIN_TEXTURE = 0.2  # mean squared high-pass (grey levels^2) a block needs to be matchable
MIN_CELLS = 16  # a duplicated region has at least this many matched blocks (1024 px)
MIN_STRENGTH = 32.0  # matched cells x (1 - mismatch / MAX_RATIO) a reported pair needs


@dataclass(frozen=True)
class Pair:
    shift: tuple[int, int]  # (dy, dx): the region at B = the region at A moved by shift
    a: BBox
    b: BBox
    cells: int
    mismatch: float
    peak_z: float


def highpass(gray: np.ndarray) -> np.ndarray:
    return np.asarray(gray - ndimage.uniform_filter(gray, 5))


def contrast_normalised(hp: np.ndarray) -> np.ndarray:
    """High-pass divided by its local RMS, so weakly textured copies weigh as much as busy ones."""
    return np.asarray(hp / np.sqrt(ndimage.uniform_filter(hp * hp, 15) + 1.0))


def candidate_shifts(hp: np.ndarray) -> list[tuple[int, int, float]]:
    """Strongest peaks (dy, dx, z) of the whitened circular autocorrelation, |d| >= MIN_SHIFT."""
    h, w = hp.shape
    spec = fft.rfft2(hp, workers=1)
    corr = fft.irfft2(spec * np.conj(spec) / (np.abs(spec) + 1e-3), s=hp.shape, workers=1)
    dy = np.minimum(np.arange(h), h - np.arange(h))[:, None]
    dx = np.minimum(np.arange(w), w - np.arange(w))[None, :]
    corr[dy * dy + dx * dx < MIN_SHIFT**2] = 0.0
    std = float(corr.std()) or 1.0
    flat = corr.ravel()
    top = np.argpartition(flat, -256)[-256:]
    picked: list[tuple[int, int, float]] = []
    for i in top[np.argsort(-flat[top])]:
        y, x = divmod(int(i), w)
        if any(_wrap_near(y - p, h) and _wrap_near(x - q, w) for p, q, _ in picked):
            continue  # non-maximum suppression
        if any(_wrap_near(y + p, h) and _wrap_near(x + q, w) for p, q, _ in picked):
            continue  # -d is the same pair seen from the other side
        picked.append((y, x, float(flat[i]) / std))
        if len(picked) == N_PEAKS:
            break
    return picked


def _wrap_near(v: int, n: int, r: int = 4) -> bool:
    v %= n
    return min(v, n - v) <= r


def aliases(y: int, x: int, h: int, w: int) -> list[tuple[int, int]]:
    """The circular peak (y, x) is one of up to four real shifts; keep those with overlap."""
    out = []
    for sy in {y, y - h}:
        for sx in {x, x - w}:
            if (
                abs(sy) < h - 2 * CELL
                and abs(sx) < w - 2 * CELL
                and sy * sy + sx * sx >= MIN_SHIFT**2
            ):
                out.append((sy, sx))
    return out


@dataclass(frozen=True)
class Signals:
    """What verification compares: grey levels, high-pass energy, contrast-normalised detail."""

    gray: np.ndarray
    hp2: np.ndarray
    norm: np.ndarray

    @classmethod
    def of(cls, gray: np.ndarray) -> Signals:
        hp = highpass(gray)
        return cls(gray, hp * hp, contrast_normalised(hp))


def _cell_mean(a: np.ndarray) -> np.ndarray:
    return np.asarray(blocks(a, CELL).mean(axis=-1))


def verify(sig: Signals, shift: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Cells (8x8 blocks) at x that agree with the block at x + shift.

    Two blocks agree when their grey-level difference is small against their texture energy,
    or when their contrast-normalised detail matches (a copy whose brightness or contrast was
    changed). Returns the bool cell grid, each cell's mismatch ratio (in units where MAX_RATIO
    is the limit), and the grid's top-left pixel in the image.
    """
    dy, dx = shift
    h, w = sig.gray.shape[0] - abs(dy), sig.gray.shape[1] - abs(dx)
    ya, xa, yb, xb = max(0, -dy), max(0, -dx), max(0, dy), max(0, dx)
    a, b = (slice(ya, ya + h), slice(xa, xa + w)), (slice(yb, yb + h), slice(xb, xb + w))
    ea, eb = _cell_mean(sig.hp2[a]), _cell_mean(sig.hp2[b])
    grey = _cell_mean((sig.gray[a] - sig.gray[b]) ** 2) / (ea + eb + 0.5)
    na, nb = sig.norm[a], sig.norm[b]
    detail = _cell_mean((na - nb) ** 2) / (_cell_mean(na * na) + _cell_mean(nb * nb) + 1e-6)
    ratio = np.minimum(grey, detail * (MAX_RATIO / MAX_DETAIL_RATIO))
    match = (ratio < MAX_RATIO) & (np.minimum(ea, eb) > MIN_TEXTURE)
    return ndimage.binary_opening(match), ratio, (ya, xa)  # lone agreeing cells are chance


def to_pixels(cells: np.ndarray, origin: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """A cell grid painted into an image-sized bool map at `origin`."""
    out = np.zeros(shape[:2], dtype=bool)
    px = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)
    out[origin[0] : origin[0] + px.shape[0], origin[1] : origin[1] + px.shape[1]] = px
    return out


def regions(match: np.ndarray) -> np.ndarray:
    """Matched cells in components of at least MIN_CELLS, small gaps and holes filled."""
    labels, n = ndimage.label(match)
    if n == 0:
        return match
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    big = sizes >= MIN_CELLS
    big[0] = False
    keep = big[labels]
    if not keep.any():
        return np.asarray(keep, dtype=bool)
    return np.asarray(ndimage.binary_fill_holes(ndimage.binary_closing(keep, iterations=2)))


def shifted(mask: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """The mask moved by (dy, dx), cropped to the image."""
    dy, dx = shift
    h, w = mask.shape
    out = np.zeros_like(mask)
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def repetitive(sig: Signals, a: np.ndarray, shift: tuple[int, int]) -> bool:
    """A periodic texture also matches at 2d and at -d; a pasted copy does not.

    (A match over most of the overlap is rejected before this: that is the image repeating.)
    """
    dy, dx = shift
    for s in ((2 * dy, 2 * dx), (-dy, -dx)):
        if abs(s[0]) >= a.shape[0] - 2 * CELL or abs(s[1]) >= a.shape[1] - 2 * CELL:
            continue
        match, _, origin = verify(sig, s)
        if (to_pixels(match, origin, a.shape) & a).sum() > 0.3 * a.sum():
            return True
    return False


def find_pairs(sig: Signals) -> tuple[list[Pair], np.ndarray, int]:
    """Verified duplicated-region pairs, the map marking both sides, and how many were rejected.

    Rejected: repetitive textures, and matches whose strength (cells weighted by how closely
    they agree) is below MIN_STRENGTH.
    """
    g = sig.gray
    heat = np.zeros(g.shape, dtype=bool)
    pairs: list[Pair] = []
    weak = 0
    for y, x, z in candidate_shifts(sig.norm):
        for shift in aliases(y, x, *g.shape):
            if any(p.shift == (-shift[0], -shift[1]) for p in pairs):
                continue  # the same pair seen from the other side
            match, ratio, origin = verify(sig, shift)
            keep = regions(match)
            if not keep.any():
                continue
            cells = int(keep.sum())
            mismatch = float(np.median(ratio[keep & match]))
            if cells * (1.0 - mismatch / MAX_RATIO) < MIN_STRENGTH:
                weak += 1  # a few loosely similar blocks: natural look-alikes, not a copy
                continue
            a = to_pixels(keep, origin, g.shape)
            if cells > 0.5 * match.size or repetitive(sig, a, shift):
                weak += 1
                continue
            b = shifted(a, shift)
            heat |= a | b
            pairs.append(Pair(shift, components(a)[0][0], components(b)[0][0], cells, mismatch, z))
    return pairs, heat, weak


@register_expert
class CopyMoveExpert(Expert):
    spec = ExpertSpec(
        name="copy_move",
        version="0.1.0",
        kind="signal",
        targets="tampered",
        description=(
            "Finds regions duplicated inside the image (translation copy-move): candidate "
            "shifts from the whitened autocorrelation, verified block by block; marks both "
            "the source and the pasted copy."
        ),
        produces_heatmap=True,
        reference=(
            "Fridrich, Soukal & Lukas 2003 (detection of copy-move forgery); Christlein et al. "
            "2012 (an evaluation of popular copy-move forgery detection approaches)"
        ),
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        g = image.gray
        if min(g.shape) < 8 * CELL:
            return self.abstain(f"image too small to hold a duplicated region (< {8 * CELL} px)")
        sig = Signals.of(g)
        textured = _cell_mean(sig.hp2) > MIN_TEXTURE
        if float(textured.mean()) < 0.05:
            return self.abstain("almost no textured area: duplicated regions cannot be told apart")
        pairs, mask, rejected = find_pairs(sig)
        heat = mask.astype(np.float32)
        evidence = [_pair_evidence(p) for p in pairs[:3]]
        score = 0.0
        if pairs:
            strongest = max(p.cells for p in pairs)
            score = 0.5 + 0.5 * float(ramp(np.array(strongest), MIN_STRENGTH, 128))
        else:
            evidence.append(
                Evidence(
                    kind="copy_move.none",
                    summary=(
                        f"No duplicated region found: the {N_PEAKS} strongest self-similarity "
                        f"shifts (>= {MIN_SHIFT} px) did not verify over {MIN_CELLS} or more "
                        f"{CELL}x{CELL} blocks ({rejected} rejected as repeating texture "
                        f"or loose look-alikes)."
                    ),
                )
            )
        details = {
            "pairs": [
                {
                    "shift_dy_dx": list(p.shift),
                    "cells": p.cells,
                    "mismatch": round(p.mismatch, 3),
                    "peak_z": round(p.peak_z, 1),
                    "a": p.a.model_dump(),
                    "b": p.b.model_dump(),
                }
                for p in pairs
            ],
            "textured_share": round(float(textured.mean()), 3),
            "rejected_candidates": rejected,
            "flagged_share": round(float((heat >= 0.5).mean()), 4),
        }
        return self.result(score, evidence=evidence, heatmap=heat, details=details)


def _pair_evidence(p: Pair) -> Evidence:
    dy, dx = p.shift
    return Evidence(
        kind="copy_move.pair",
        summary=(
            f"Region {bbox_words(p.a)} reappears at {bbox_words(p.b)} (shift dx={dx}, dy={dy} px): "
            f"{p.cells} blocks of {CELL}x{CELL} px agree (median mismatch {p.mismatch:.2f}, "
            f"0 = identical, {MAX_RATIO} = limit); one of the two is a copy of the other."
        ),
        value=p.cells,
        bbox=p.b,
    )
