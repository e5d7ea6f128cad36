"""Hand-made features for the two classic baselines (numpy + scipy, no weights).

- FreDect-style (Frank et al. 2020): log magnitude of the 2-D DCT of the luma, average-pooled
  to a coarse grid so a linear classifier can be fitted on a few hundred images.
- GramNet-style (Liu et al. 2020): Gram matrices (channel correlations) of texture responses.
  GramNet takes them from CNN layers; with no CNN here we take them from a fixed bank of
  derivative filters at three scales, which keeps the "global texture statistics" idea.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage

DCT_GRID = 28  # 224 / 8: one bin per 8x8 block of DCT coefficients


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def fredect_features(rgb: np.ndarray, grid: int = DCT_GRID) -> np.ndarray:
    """(grid * grid,) mean log |DCT| of the luma in a grid x grid layout of frequency bins."""
    spec = np.log(np.abs(fft.dctn(_luma(rgb), norm="ortho")) + 1e-3)
    h, w = spec.shape
    spec = spec[: h - h % grid, : w - w % grid]
    pooled = spec.reshape(grid, spec.shape[0] // grid, grid, spec.shape[1] // grid).mean((1, 3))
    return np.asarray(pooled.ravel(), dtype=np.float32)


_KERNELS = [
    np.array([[0, 0, 0], [-1, 1, 0], [0, 0, 0]], dtype=np.float64),  # horizontal difference
    np.array([[0, -1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),  # vertical difference
    np.array([[-1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),  # diagonal
    np.array([[0, 0, -1], [0, 1, 0], [0, 0, 0]], dtype=np.float64),  # anti-diagonal
    np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),  # Laplacian
    np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64),  # second-order cross
]


def _responses(img: np.ndarray) -> np.ndarray:
    """(K + 3, H*W) filter responses on luma plus the two chroma differences and luma."""
    luma = _luma(img)
    chans = [ndimage.convolve(luma, k, mode="reflect") for k in _KERNELS]
    rg = img[..., 0].astype(np.float64) - img[..., 1]
    bg = img[..., 2].astype(np.float64) - img[..., 1]
    chans += [rg - rg.mean(), bg - bg.mean(), luma - luma.mean()]
    return np.stack([c.ravel() for c in chans])


def gram_features(rgb: np.ndarray, scales: int = 3) -> np.ndarray:
    """Upper triangles of the response Gram matrices at `scales` dyadic scales (signed log)."""
    feats = []
    img = rgb.astype(np.float64)
    for _ in range(scales):
        resp = _responses(img)
        gram = resp @ resp.T / resp.shape[1]
        iu = np.triu_indices(gram.shape[0])
        feats.append(np.sign(gram[iu]) * np.log1p(np.abs(gram[iu])))
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = img[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean((1, 3))
    return np.concatenate(feats).astype(np.float32)
