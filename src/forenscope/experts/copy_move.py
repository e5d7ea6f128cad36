"""Copy-move: a region of the image pasted elsewhere in the same image (translation only).

A duplicated region makes the image's high-pass content correlate with itself at the copy's
shift vector d. We find candidate shifts as the strongest peaks of the spectrally whitened
autocorrelation (one FFT; the dense counterpart of shift-vector voting in Fridrich 2003 /
Christlein 2012), then verify each candidate block by block: an 8x8 block at x and the block at
x + d must agree to within a fraction of their own texture energy. Matched blocks that form a
region of a minimum size are the source and the target (which is which cannot be told: both are
marked). Flat blocks are never matched (an empty sky matches itself anywhere).

Repetitive structures (facades, fences, tiles, fabric) match themselves at their period too. A
copy is told from texture by being *distinct*: each matched block must agree with its partner at
d far better (MAX_ALT_FRACTION) than with its neighbours at any other repeat of the texture
(-d, 2d, d/k, and the image's other self-similarity peaks). A cluster of matched blocks in
which most blocks are not distinct is texture and is dropped; so is a match over most of the
image. When the short self-similarity peaks form a lattice (a facade's window grid), candidate
shifts on that lattice are skipped, so the verified candidates are the ones off it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import fft, ndimage

from ..io.input import ImageInput
from ..map_geometry import averaging, resize_map
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from ._signal_math import bbox_words, blocks, components, ramp, wrap_max_filter
from ._working import COPY_MOVE_MAX_PIXELS as COPY_MOVE_MAX_PIXELS  # tests and benchmarks lower it
from ._working import MAP_SIDE, map_shape, shrink_map
from .base import Expert
from .registry import register_expert

CELL = 8  # verification block (px)
MIN_SHIFT = 32  # shorter shifts are mostly a texture matching itself (fences, foliage)
N_PEAKS = 4  # autocorrelation peaks to verify
N_PEAKS_LATTICE = 12  # the same in an image dominated by a lattice texture
MAX_RATIO = 0.6  # block mismatch energy / texture energy below which two blocks "agree"
MAX_DETAIL_RATIO = 0.4  # the same for contrast-normalised detail (roughly 1 - correlation)
MIN_TEXTURE = 0.2  # mean squared high-pass (grey levels^2) a block needs to be matchable
MIN_CELLS = 16  # a duplicated region has at least this many matched blocks (1024 px)
MIN_STRENGTH = 32.0  # matched cells x (1 - mismatch / MAX_RATIO) a reported pair needs
# Texture test: a copied block's mismatch at d is below this fraction of its best mismatch at
# any other repeat (or it matches at no other repeat). Periodic textures match their neighbours
# as well: on shared data 0-13% of blocks were distinct on fences, facades, lace and fabric,
# 82-100% on the verified copies.
MAX_ALT_FRACTION = 0.5
MIN_DISTINCT_SHARE = 0.5  # of a cluster's matched blocks, for the cluster to be a copy
ALT_MIN_SHIFT = 8  # shortest texture period probed (px)
N_ALT_PEAKS = 8  # self-similarity peaks probed as the texture's own repeats
# A lattice texture (facade, tiles) fills the strongest self-similarity peaks with its own
# repeats; when most short peaks lie on one lattice, copy candidates on it are skipped so the
# few candidate slots go to shifts off the lattice.
MIN_PERIOD = 12
LATTICE_SHARE = 0.75
MAX_PEAKS_SEEN = 512  # self-similarity peaks looked at, lattice ones included
PEAK_WINDOW = 9  # a self-similarity peak is the maximum of its PEAK_WINDOW^2 neighbourhood
# Above MAP_SIDE**2 pixels the self-similarity FFT runs on the largest top-left crop whose sides
# the FFT factors quickly: a side with a large prime factor (8485 = 5 x 1697) made one FFT take
# 25 s at 48 MP. Verification still covers the whole image; smaller images are not cropped.
FFT_CROP_ABOVE = MAP_SIDE * MAP_SIDE


@dataclass(frozen=True)
class Pair:
    shift: tuple[int, int]  # (dy, dx): the region at B = the region at A moved by shift
    a: BBox
    b: BBox
    cells: int
    mismatch: float
    peak_z: float
    alt_mismatch: float = float("inf")  # median best mismatch of the blocks at other repeats
    block: int = CELL  # side in image pixels of the blocks counted in `cells`

    def scaled(self, f: int, height: int, width: int) -> Pair:
        """This pair, found on a search plane averaged over f x f pixels, in image pixels."""
        if f == 1:
            return self
        return replace(
            self,
            shift=(self.shift[0] * f, self.shift[1] * f),
            a=_scaled_box(self.a, f, height, width),
            b=_scaled_box(self.b, f, height, width),
            block=self.block * f,
        )


def _scaled_box(box: BBox, f: int, height: int, width: int) -> BBox:
    x, y = min(box.x * f, width - 1), min(box.y * f, height - 1)
    return BBox(
        x=x, y=y, width=min(box.width * f, width - x), height=min(box.height * f, height - y)
    )


def highpass(gray: np.ndarray) -> np.ndarray:
    """The plain form of `Signals.of`'s high-pass (which makes it strip by strip)."""
    return np.asarray(gray - ndimage.uniform_filter(gray, 5))


def contrast_normalised(hp: np.ndarray) -> np.ndarray:
    """High-pass divided by its local RMS, so weakly textured copies weigh as much as busy ones
    (the plain form of `Signals.of`'s `norm`)."""
    return np.asarray(hp / np.sqrt(ndimage.uniform_filter(hp * hp, 15) + 1.0))


def uniform_filter_strips(a: np.ndarray, size: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """`ndimage.uniform_filter(a, size)` of a 2-D array, bit for bit, as successive (start,
    stop, rows) strips, without an image-sized temporary and in about half scipy's time.

    scipy filters down the columns first, one strided line at a time (3x its row pass at
    12 MP). Its running sum is kept here a whole row at a time, with scipy's own arithmetic
    (a float64 sum of the first `size` values, then `sum += entering - leaving`, each output
    `sum / size` in a's dtype, mirrored 'reflect' edges); then scipy's own row pass on each
    strip, which filters every row on its own.
    """
    n = a.shape[0]
    if a.ndim != 2 or n <= size:  # the edges would need more than one reflection
        yield 0, n, np.asarray(ndimage.uniform_filter(a, size))
        return
    before = size // 2

    def lines(i: np.ndarray) -> np.ndarray:
        """Rows `i` of `a` extended by reflection (a gathered copy)."""
        i = np.where(i < 0, -i - 1, i)
        return np.asarray(a[np.where(i >= n, 2 * n - 1 - i, i)])

    rows = max(1, STRIP_BYTES // (a.itemsize * max(a.shape[1], 1)))
    cols = np.empty((min(rows, n), a.shape[1]), a.dtype)
    # sums[0] carries the running sum into each strip; sums[1:] become the strip's sums.
    sums = np.zeros((min(rows, n) + 1, a.shape[1]), np.float64)
    for row in lines(np.arange(size) - before):  # the first window's rows, added in order
        np.add(sums[0], row, out=sums[0])
    for top in range(0, n, rows):
        stop = min(top + rows, n)
        i = np.arange(max(top, 1), stop)  # row 0 is the initial sum itself
        part = sums[: len(i) + 1]
        entering, leaving = lines(i + size - 1 - before), lines(i - 1 - before)
        np.subtract(entering, leaving, out=part[1:], dtype=np.float64)
        # accumulate adds row after row, in order: scipy's `sum += entering - leaving`
        np.add.accumulate(part, axis=0, out=part)
        done = part[1:] if top > 0 else part  # the first strip starts with row 0's sum
        np.divide(done, size, out=cols[: stop - top], casting="same_kind")
        sums[0] = part[-1]
        yield top, stop, np.asarray(ndimage.uniform_filter1d(cols[: stop - top], size, axis=1))


ELIDE_BYTES = 256 * 1024  # numpy's NPY_MIN_ELIDE_BYTES: larger temporaries are reused in place


def whitened_autocorr(hp: np.ndarray) -> np.ndarray:
    """Circular autocorrelation of the spectrally whitened high-pass (one FFT pair)."""
    spec = fft.rfft2(hp, workers=1)
    if spec.nbytes < ELIDE_BYTES:
        magnitude = np.abs(spec)
        magnitude += 1e-3
        power = spec * np.conj(spec)
        np.divide(power, magnitude, out=power)
        return np.asarray(fft.irfft2(power, s=hp.shape, workers=1))
    # spec * conj(spec) / (|spec| + 1e-3), written back into spec a strip of rows at a time:
    # no spectrum-sized temporary (three of them, 550 MB at 48 MP). numpy evaluated the
    # product as conj(spec) * spec, in place in its temporary conj (numpy elides temporaries
    # above ELIDE_BYTES and swaps a commutative product's operands for it); the strips are
    # computed in that order, which gives the same imaginary parts' last bits.
    step = max(1, STRIP_BYTES // (spec.itemsize * max(spec.shape[1], 1)))
    for top in range(0, spec.shape[0], step):
        part = spec[top : top + step]
        magnitude = np.abs(part)
        magnitude += 1e-3
        power = np.conj(part)
        np.multiply(power, part, out=power)
        np.divide(power, magnitude, out=power)
        part[...] = power
    return irfft2_over(spec, hp.shape)


def irfft2_over(spec: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`fft.irfft2(spec, s=shape, workers=1)` of a C-contiguous 2-D spectrum, bit for bit,
    written over the spectrum's own memory (which it consumes): no spectrum-sized temporary
    and no separate output (two planes of 183 MB at 48 MP).

    pocketfft's irfft2 is an unscaled inverse FFT down the columns into a spectrum-sized
    temporary, then each row's unscaled real inverse multiplied by T(1 / (h * w)) (1/N taken
    in long double). Here the columns are transformed in place and the rows a strip at a time;
    a strip's output goes where the spectrum's rows up to it lay (an output row of w reals is
    shorter than a spectrum row of w // 2 + 1 complex values), which are consumed by then.
    """
    h, w = shape
    spec = fft.ifft(spec, axis=0, norm="forward", overwrite_x=True, workers=1)  # in place
    real = np.finfo(spec.dtype).dtype
    out = spec.view(real).reshape(-1)[: h * w].reshape(h, w)
    scale = real.type(np.longdouble(1) / np.longdouble(h * w))
    step = max(1, STRIP_BYTES // (spec.itemsize * max(spec.shape[1], 1)))
    for top in range(0, h, step):
        rows = fft.irfft(spec[top : top + step], n=w, axis=1, norm="forward", workers=1)
        np.multiply(rows, scale, out=out[top : top + step])
    return out


def fft_friendly(a: np.ndarray) -> np.ndarray:
    """`a` itself, or above FFT_CROP_ABOVE pixels its largest top-left crop with fast FFT sides."""
    h, w = a.shape
    if h * w <= FFT_CROP_ABOVE:
        return a
    return a[: fft.prev_fast_len(h), : fft.prev_fast_len(w)]


def top_peaks(
    corr: np.ndarray,
    min_shift: int,
    n: int,
    skip: Callable[[tuple[int, int]], bool] | None = None,
) -> list[tuple[int, int, float]]:
    """Strongest peaks (dy, dx, z) of a circular autocorrelation with |d| >= min_shift, one per
    +-d pair (both signs are the same pair seen from either side), leaving out peaks for which
    `skip((y, x))` holds. Zeroes the shifts below min_shift in `corr` (in place: the
    image-sized array is not copied). The plain form of `find_pairs`' two searches."""
    _zero_short(corr, min_shift)
    maxed = wrap_max_filter(corr, PEAK_WINDOW)
    std = float(corr.std()) or 1.0
    return _pick(corr, (corr >= maxed) & (corr > 0), std, n, skip)


def plane_std(a: np.ndarray) -> float:
    """`float(a.std())` of a C-contiguous float array, bit for bit, without the a-sized
    temporary of its deviations (183 MB at 48 MP, beside `corr` and the signals).

    numpy's std: the mean (its float sum / n), then the squared deviations summed pairwise
    over the whole flat array (halves rounded down to a multiple of 8, blocks of up to 128),
    divided by n, square-rooted, each in a's dtype. The sum here follows that tree and takes
    numpy's own sum of each subtree that fits a strip.
    """
    if not a.flags.c_contiguous or a.size == 0:
        return float(a.std())
    flat, count = a.reshape(-1), np.intp(a.size)  # numpy divides by an intp (in float64)
    mean = np.add.reduce(a, axis=None, keepdims=True)
    mean = np.true_divide(mean, count, out=mean, casting="unsafe").reshape(1)
    total = _squares_sum(flat, mean, 0, flat.size, max(128, STRIP_BYTES // a.itemsize))
    var = total.dtype.type(total / count)
    return float(var.dtype.type(np.sqrt(var)))


def _squares_sum(flat: np.ndarray, mean: np.ndarray, lo: int, n: int, leaf: int) -> np.floating:
    """numpy's pairwise sum of (flat[lo : lo + n] - mean) ** 2 (see `plane_std`). A function
    of its own, not a closure: a recursive closure is a reference cycle that would keep
    `flat` (the image-sized `corr`) alive until the garbage collector runs."""
    if n <= leaf:
        x = np.subtract(flat[lo : lo + n], mean)
        np.square(x, out=x)
        return np.add.reduce(x)  # type: ignore[no-any-return]
    half = n // 2
    half -= half % 8
    first = _squares_sum(flat, mean, lo, half, leaf)
    return first + _squares_sum(flat, mean, lo + half, n - half, leaf)


def _zero_short(corr: np.ndarray, min_shift: int) -> int:
    """Zero the circular shifts shorter than min_shift (in place); returns the disk's reach."""
    h, w = corr.shape
    r = int(min(min_shift, h // 2, w // 2))
    yy, xx = np.mgrid[-r + 1 : r, -r + 1 : r]
    disk = yy * yy + xx * xx < min_shift**2
    corr[yy[disk] % h, xx[disk] % w] = 0.0
    return r


def _pick(
    corr: np.ndarray,
    local: np.ndarray,
    std: float,
    n: int,
    skip: Callable[[tuple[int, int]], bool] | None,
) -> list[tuple[int, int, float]]:
    """`top_peaks`' choice among the local maxima `local` (a bool map) of `corr`."""
    h, w = corr.shape
    flat = corr.ravel()
    # Local maxima only (a lattice texture has hundreds of peaks before a copy's), strongest
    # first.
    where = np.flatnonzero(local)
    top = where[np.argsort(-flat[where])[:MAX_PEAKS_SEEN]]
    seen: list[tuple[int, int]] = []
    picked: list[tuple[int, int, float]] = []
    for i in top:
        y, x = divmod(int(i), w)
        if any(_wrap_near(y - p, h) and _wrap_near(x - q, w) for p, q in seen):
            continue  # a plateau's second maximum
        if any(_wrap_near(y + p, h) and _wrap_near(x + q, w) for p, q in seen):
            continue  # -d is the same pair seen from the other side
        seen.append((y, x))
        if skip is None or not skip((y, x)):
            picked.append((y, x, float(flat[i]) / std))
            if len(picked) == n:
                break
    return picked


MAX_STRIP_BYTES = (
    16 << 20
)  # strips of `local_maxima`: their 8 wrapped extra rows stay a few percent


def local_maxima(a: np.ndarray, size: int) -> np.ndarray:
    """`(a >= wrap_max_filter(a, size)) & (a > 0)` of a 2-D array, a strip of rows at a time:
    the same map (a maximum is exact and each output row needs only the size rows around it,
    wrapped), without the filter's image-sized float output and temporaries."""
    h, w = a.shape
    r = size // 2
    rows = max(4 * size, MAX_STRIP_BYTES // (a.itemsize * max(w, 1)))
    if h <= rows:
        return np.asarray((a >= wrap_max_filter(a, size)) & (a > 0))
    out = np.empty(a.shape, dtype=bool)
    for top in range(0, h, rows):
        stop = min(top + rows, h)
        maxed = wrap_max_filter(a[np.arange(top - r, stop + r) % h], size)[r : r + stop - top]
        strip = a[top:stop]
        np.logical_and(strip >= maxed, strip > 0, out=out[top:stop])
    return out


def _refresh_local(corr: np.ndarray, local: np.ndarray, extent: int) -> None:
    """Bring the local-maximum map up to date after `_zero_short`: recompute it wherever the
    max filter's window reaches a shift within `extent` of zero on both axes, on a wrapped
    block around the origin whose margin holds every window (the rest cannot change)."""
    half = PEAK_WINDOW // 2
    h, w = corr.shape
    out = np.arange(-extent - half, extent + half + 1)
    src_y = np.arange(-extent - 2 * half, extent + 2 * half + 1) % h
    src_x = np.arange(-extent - 2 * half, extent + 2 * half + 1) % w
    block = ndimage.maximum_filter(corr[np.ix_(src_y, src_x)], PEAK_WINDOW, mode="nearest")
    at = np.ix_(out % h, out % w)
    local[at] = (corr[at] >= block[half:-half, half:-half]) & (corr[at] > 0)


def signed(y: int, x: int, h: int, w: int) -> tuple[int, int]:
    """The circular shift (y, x) as the signed shift closest to zero."""
    return (y - h if 2 * y > h else y, x - w if 2 * x > w else x)


def lattice_basis(peaks: list[tuple[int, int]]) -> np.ndarray | None:
    """Basis (2 x 1 or 2 x 2) of the repeat lattice of a periodic texture, when most of the
    image's short self-similarity peaks are integer combinations of the first two independent
    ones; None when the image has no dominant period. Short shifts on the 8 px grid are left
    out: a JPEG's blocking repeats there, and a lattice from it would hide real copies."""
    vecs = [np.array(p, float) for p in peaks if (p[0] % 8 or p[1] % 8) or np.hypot(*p) >= 24]
    vecs = [v for v in vecs if float(np.hypot(*v)) >= MIN_PERIOD]
    if len(vecs) < 4:
        return None
    basis = [vecs[0]]
    for v in vecs[1:]:
        cross = abs(vecs[0][0] * v[1] - vecs[0][1] * v[0])
        if cross > 0.3 * float(np.hypot(*vecs[0]) * np.hypot(*v)):
            basis.append(v)
            break
    b = np.stack(basis, axis=1)
    on = sum(on_lattice(v, b) for v in vecs)
    return b if on >= LATTICE_SHARE * len(vecs) else None


def on_lattice(d: np.ndarray | tuple[int, int], basis: np.ndarray) -> bool:
    """Whether shift d is a non-zero integer combination of the basis (to 1.5 px + 1%)."""
    v = np.asarray(d, float)
    k = np.round(np.linalg.lstsq(basis, v, rcond=None)[0])
    return bool(k.any()) and float(np.hypot(*(v - basis @ k))) <= 1.5 + 0.01 * float(np.hypot(*v))


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


# Above this many pixels `find_pairs` lets hp2 go during the self-similarity FFT and makes it
# again for verification: one plane less at copy_move's peak (183 MB at 48 MP) for 0.3 s of
# CPU there; below it the 0.08 s at 12 MP is not worth the 46 MB.
DROP_HP2_ABOVE = 16_000_000
# Above COPY_MOVE_MAX_PIXELS (24 MP) the whole search runs on the grey plane averaged over f x f
# pixels (`map_geometry.averaging`): at 48 MP f = 2, and copy_move's CPU falls from 3-4 s to
# under 1 s and its memory (alone, above the decoded image, the grey plane included) from 518 to
# 281 MB. A copy then needs MIN_CELLS blocks of (f * CELL)^2 image pixels. On 2x2 mosaics of
# 12-20 MP photos (48 MP, copies of 96-768 px pasted in) both searches found and missed the same
# copies (mask IoU 0.95 against 0.98; benchmarks/bench_copy_move_large.py).


def binned(gray: np.ndarray, f: int) -> np.ndarray:
    """The mean of each f x f block of `gray` (float32; remainder rows and columns dropped)."""
    h, w = gray.shape[0] // f, gray.shape[1] // f
    out = np.zeros((h, w), dtype=np.float32)
    for dy in range(f):  # f * f strided adds: no (h, f, w, f) reduction temporaries
        for dx in range(f):
            out += gray[dy : h * f : f, dx : w * f : f]
    out /= f * f
    return out


@dataclass(frozen=True)
class Signals:
    """What verification compares: grey levels, high-pass energy, contrast-normalised detail."""

    gray: np.ndarray
    norm: np.ndarray
    # "hp2": the high-pass energy while it is held (see `hp2`, `drop_hp2`).
    planes: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # Cell means of hp2 and norm**2 on the cell grid at each phase, filled as `verify` asks:
    # the grid of a shift's overlap is a window of one of them.
    tables: dict[tuple[str, int, int], np.ndarray] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, gray: np.ndarray) -> Signals:
        """hp2 = hp * hp and norm = `contrast_normalised(hp)` with hp = `highpass(gray)`, the
        same values, made strip by strip: two image-sized planes besides the grey levels
        instead of up to six at once (1.1 GB at 48 MP)."""
        hp = np.empty_like(gray)
        for top, stop, low in uniform_filter_strips(gray, 5):
            np.subtract(gray[top:stop], low, out=hp[top:stop])
        hp2 = np.multiply(hp, hp)
        # norm overwrites hp in place: its row i needs hp's row i only, and hp2's rows around i.
        for top, stop, low in uniform_filter_strips(hp2, 15):
            low += 1.0
            np.sqrt(low, out=low)
            np.divide(hp[top:stop], low, out=hp[top:stop])
        return cls(gray, hp, {"hp2": hp2})

    @property
    def hp2(self) -> np.ndarray:
        """`highpass(gray) ** 2`, made again (the same values) if it was dropped."""
        hp2 = self.planes.get("hp2")
        if hp2 is None:
            hp2 = self.planes["hp2"] = highpass_energy(self.gray)
        return hp2

    def drop_hp2(self) -> None:
        """Let the hp2 plane go until `hp2` is next asked for (the cached tables stay)."""
        self.planes.pop("hp2", None)

    def cell_mean(self, name: str, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
        """`_cell_mean` of hp2 ("hp2") or norm**2 ("norm2") over the window of `shape` at
        `origin`, bit for bit, cut from the cached table of the origin's phase."""
        y, x = origin
        key = (name, y % CELL, x % CELL)
        table = self.tables.get(key)
        if table is None:
            src = self.hp2 if name == "hp2" else self.norm
            view = src[y % CELL :, x % CELL :]
            rows = view.shape[0] // CELL * CELL
            if name == "hp2":
                table = _strip_cell_means(lambda r: view[r], rows, view.shape[1])
            else:
                table = _strip_cell_means(lambda r: view[r] * view[r], rows, view.shape[1])
            self.tables[key] = table
        by, bx = y // CELL, x // CELL
        return table[by : by + shape[0] // CELL, bx : bx + shape[1] // CELL]


def highpass_energy(gray: np.ndarray) -> np.ndarray:
    """`Signals.of`'s hp * hp (hp = `highpass(gray)`), the same values, a strip at a time:
    no hp plane besides it."""
    hp2 = np.empty_like(gray)
    for top, stop, low in uniform_filter_strips(gray, 5):
        part = hp2[top:stop]
        np.subtract(gray[top:stop], low, out=part)
        np.multiply(part, part, out=part)
    return hp2


def _cell_mean(a: np.ndarray) -> np.ndarray:
    """Mean of each CELL x CELL block (remainders dropped), bit for bit
    `blocks(a, CELL).mean(axis=-1)`: numpy's pairwise sum of a block's 64 contiguous values
    adds 8 running sums (one per column, down the rows) and then the 8 sums as
    ((0+1)+(2+3))+((4+5)+(6+7)). Done here on strided views, without `blocks`' copy."""
    if CELL != 8:
        return np.asarray(blocks(a, CELL).mean(axis=-1))
    nby, nbx = a.shape[0] // CELL, a.shape[1] // CELL
    v = a[: nby * CELL, : nbx * CELL].reshape(nby, CELL, nbx, CELL)
    r = v[:, 0] + v[:, 1]
    for i in range(2, CELL):
        r += v[:, i]
    c = [r[:, :, j] for j in range(CELL)]
    total = (c[0] + c[1]) + (c[2] + c[3])
    total += (c[4] + c[5]) + (c[6] + c[7])
    return np.asarray(total / (CELL * CELL))


STRIP_BYTES = (
    1 << 20
)  # a strip's temporaries stay in cache; smaller strips pay numpy's call overhead


def _strip_cell_means(values: Callable[[slice], np.ndarray], rows: int, cols: int) -> np.ndarray:
    """`_cell_mean` of an array of `rows` x `cols` (rows a multiple of CELL) that `values`
    yields a strip of rows at a time, so its temporaries never span the image."""
    step = max(CELL, STRIP_BYTES // (4 * max(cols, 1)) // CELL * CELL)
    parts = [_cell_mean(values(slice(y, min(y + step, rows)))) for y in range(0, rows, step)]
    if not parts:
        return np.zeros((0, cols // CELL), np.float32)
    return np.concatenate(parts, axis=0)


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
    ea, eb = sig.cell_mean("hp2", (ya, xa), (h, w)), sig.cell_mean("hp2", (yb, xb), (h, w))
    rows = h // CELL * CELL
    ga, gb = sig.gray[ya : ya + rows, xa : xa + w], sig.gray[yb : yb + rows, xb : xb + w]
    na, nb = sig.norm[ya : ya + rows, xa : xa + w], sig.norm[yb : yb + rows, xb : xb + w]
    grey = _strip_cell_means(lambda r: (ga[r] - gb[r]) ** 2, rows, w) / (ea + eb + 0.5)
    energy = sig.cell_mean("norm2", (ya, xa), (h, w)) + sig.cell_mean("norm2", (yb, xb), (h, w))
    detail = _strip_cell_means(lambda r: (na[r] - nb[r]) ** 2, rows, w) / (energy + 1e-6)
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


WINDOW_CHUNK = 8192  # points whose windows are gathered at once (6 x 2 MB of float32)


def window_ratio(sig: Signals, shift: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """`verify`'s mismatch ratio of the CELL x CELL window centred on each point (y, x) against
    the window at point + shift; inf where that leaves the image or a window is flat.

    The windows are those of `ndimage.uniform_filter(., CELL)` over the crop from the points'
    bounding box (plus CELL) to the image's overlap with its shifted copy, mirrored at the crop's
    edges as that filter's 'reflect' mode does, but summed only at the points: filtering the whole
    crop once per texture repeat cost 185 of 209 s at 48 MP."""
    dy, dx = shift
    y0, x0, y1, x1 = window_crop(sig.gray.shape, shift, points)
    out = np.full(len(points), np.inf)
    if y1 - y0 < CELL or x1 - x0 < CELL:
        return out
    py, px = points[:, 0] - y0, points[:, 1] - x0
    inside = np.flatnonzero((py >= 0) & (py < y1 - y0) & (px >= 0) & (px < x1 - x0))
    for i in range(0, len(inside), WINDOW_CHUNK):
        at = inside[i : i + WINDOW_CHUNK]
        # (CELL, 1, n) rows by (1, CELL, n) columns: the sums run over the leading axes, which
        # numpy vectorises along the n points (a reduction over a short last axis is slow).
        ra = (y0 + _window_lines(py[at], y1 - y0))[:, None, :]
        ca = (x0 + _window_lines(px[at], x1 - x0))[None, :, :]
        rb, cb = ra + dy, ca + dx
        ea, eb = _window_mean(sig.hp2[ra, ca]), _window_mean(sig.hp2[rb, cb])
        grey = _window_mean((sig.gray[ra, ca] - sig.gray[rb, cb]) ** 2) / (ea + eb + 0.5)
        na, nb = sig.norm[ra, ca], sig.norm[rb, cb]
        energy = _window_mean(na * na) + _window_mean(nb * nb)
        detail = _window_mean((na - nb) ** 2) / (energy + 1e-6)
        out[at] = np.where(
            np.minimum(ea, eb) > MIN_TEXTURE,
            np.minimum(grey, detail * (MAX_RATIO / MAX_DETAIL_RATIO)),
            np.inf,
        )
    return out


def window_crop(
    shape: tuple[int, ...], shift: tuple[int, int], points: np.ndarray
) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1): the points' bounding box grown by CELL, cut to where the image overlaps
    its copy moved by -shift (the region whose windows `window_ratio` compares)."""
    h, w = shape[:2]
    dy, dx = shift
    y0 = max(int(points[:, 0].min()) - CELL, 0, -dy)
    x0 = max(int(points[:, 1].min()) - CELL, 0, -dx)
    y1 = min(int(points[:, 0].max()) + CELL + 1, h, h - dy)
    x1 = min(int(points[:, 1].max()) + CELL + 1, w, w - dx)
    return y0, x0, y1, x1


def _window_mean(v: np.ndarray) -> np.ndarray:
    """Mean over the (CELL, CELL) leading axes, summed in float64, in v's dtype."""
    flat = v.reshape(CELL * CELL, -1)
    return np.asarray(flat.sum(axis=0, dtype=np.float64) / flat.shape[0], v.dtype)


def _window_lines(p: np.ndarray, n: int) -> np.ndarray:
    """(CELL, len(p)): the lines of a line of length n that a CELL-wide `uniform_filter` averages
    at each p (p - CELL/2 to p + CELL/2 - 1), mirrored at both ends ('reflect': -1 -> 0)."""
    j = p[None, :] + np.arange(-(CELL // 2), CELL - CELL // 2)[:, None]
    j = np.where(j < 0, -j - 1, j)
    return np.where(j >= n, 2 * n - 1 - j, j)


def texture_repeats(shift: tuple[int, int], peaks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Shifts at which a periodic texture behind the match at `shift` would also match: -d, 2d,
    the fractions d/k down to ALT_MIN_SHIFT, and the image's other self-similarity peaks."""
    dy, dx = shift
    out = [(-dy, -dx), (2 * dy, 2 * dx)]
    for k in range(2, 7):
        if (dy / k) ** 2 + (dx / k) ** 2 >= ALT_MIN_SHIFT**2:
            out.append((round(dy / k), round(dx / k)))
    for p in peaks:
        for q in (p, (-p[0], -p[1])):
            if abs(q[0] - dy) > 3 or abs(q[1] - dx) > 3:
                out.append(q)
    return list(dict.fromkeys(out))


def distinct_clusters(
    sig: Signals,
    keep: np.ndarray,
    match: np.ndarray,
    ratio: np.ndarray,
    origin: tuple[int, int],
    shift: tuple[int, int],
    peaks: list[tuple[int, int]],
) -> tuple[np.ndarray, float]:
    """The clusters of `keep` whose blocks match at `shift` distinctly better than at the
    texture's other repeats, and the median best other-repeat mismatch of their blocks."""
    cy, cx = np.nonzero(keep & match)
    points = np.stack([origin[0] + cy * CELL + CELL // 2, origin[1] + cx * CELL + CELL // 2], 1)
    alt = np.full(len(points), np.inf)
    for s in texture_repeats(shift, peaks):
        alt = np.minimum(alt, window_ratio(sig, s, points))
    # A block that matches nowhere else is distinct whatever its own (JPEG-blurred) mismatch.
    distinct = (ratio[cy, cx] < MAX_ALT_FRACTION * alt) | (alt >= MAX_RATIO)
    labels, n = ndimage.label(keep)
    out = np.zeros_like(keep)
    for k in range(1, n + 1):
        mine = labels[cy, cx] == k
        if mine.any() and float(distinct[mine].mean()) >= MIN_DISTINCT_SHARE:
            out |= labels == k
    picked = out[cy, cx]
    return out, float(np.median(alt[picked])) if picked.any() else float("inf")


def find_pairs(sig: Signals) -> tuple[list[Pair], np.ndarray, int]:
    """Verified duplicated-region pairs, the map marking both sides, and how many were rejected.

    Rejected: matches whose strength (cells weighted by how closely they agree) is below
    MIN_STRENGTH, matches over most of the image, and clusters that are repeating texture.
    """
    g = sig.gray
    heat = np.zeros(g.shape, dtype=bool)
    pairs: list[Pair] = []
    weak = 0
    if g.size > DROP_HP2_ABOVE:
        sig.drop_hp2()  # verification makes it again, once the FFT's planes are gone
    corr = whitened_autocorr(fft_friendly(sig.norm))
    h, w = corr.shape  # the circular shifts' periods
    # Two `top_peaks` searches, the same peaks, with less memory at once: the local maxima as a
    # bool map made strip by strip, not an image-sized max filter, and each std taken while
    # `corr` is the only image-sized float array alive (48 MP: 2 planes of 183 MB, not 4).
    # The texture's own short repeats first: the copy candidates then clear more of the centre.
    _zero_short(corr, ALT_MIN_SHIFT)
    std = plane_std(corr) or 1.0
    local = local_maxima(corr, PEAK_WINDOW)
    peaks = [signed(y, x, h, w) for y, x, _ in _pick(corr, local, std, N_ALT_PEAKS, None)]
    basis = lattice_basis(peaks)

    def repeat(yx: tuple[int, int]) -> bool:
        return basis is not None and on_lattice(signed(yx[0], yx[1], h, w), basis)

    # Off-lattice texture details (a window's own parts) still compete: look at more peaks.
    n_peaks = N_PEAKS if basis is None else N_PEAKS_LATTICE
    _refresh_local(corr, local, _zero_short(corr, MIN_SHIFT) - 1)
    std = plane_std(corr) or 1.0
    candidates = _pick(corr, local, std, n_peaks, repeat)
    del corr, local  # image-sized, and verification does not need them
    for y, x, z in candidates:
        for shift in aliases(y, x, h, w):
            if any(p.shift == (-shift[0], -shift[1]) for p in pairs):
                continue  # the same pair seen from the other side
            match, ratio, origin = verify(sig, shift)
            keep = regions(match)
            if not keep.any():
                continue
            if keep.sum() > 0.5 * match.size:
                weak += 1  # the image repeats itself: texture, not a copy
                continue
            keep, alt = distinct_clusters(sig, keep, match, ratio, origin, shift, peaks)
            cells = int(keep.sum())
            if cells < MIN_CELLS:
                weak += 1
                continue
            mismatch = float(np.median(ratio[keep & match]))
            if cells * (1.0 - mismatch / MAX_RATIO) < MIN_STRENGTH:
                weak += 1  # a few loosely similar blocks: natural look-alikes, not a copy
                continue
            a = to_pixels(keep, origin, g.shape)
            b = shifted(a, shift)
            heat |= a | b
            pair = Pair(shift, components(a)[0][0], components(b)[0][0], cells, mismatch, z, alt)
            pairs.append(pair)
    return pairs, heat, weak


@register_expert
class CopyMoveExpert(Expert):
    spec = ExpertSpec(
        name="copy_move",
        version="0.4.0",
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
        f = averaging(g.size, COPY_MOVE_MAX_PIXELS)
        sig = Signals.of(g if f == 1 else binned(g, f))
        textured = sig.cell_mean("hp2", (0, 0), sig.gray.shape) > MIN_TEXTURE
        if float(textured.mean()) < 0.05:
            return self.abstain("almost no textured area: duplicated regions cannot be told apart")
        found, mask, rejected = find_pairs(sig)
        pairs = [p.scaled(f, image.height, image.width) for p in found]
        del sig
        if not mask.any():  # what the resize of an empty mask gives, without its full-size passes
            heat = np.zeros(map_shape(g.shape[:2]), dtype=np.float32)
        elif f == 1:
            heat = shrink_map(mask.astype(np.float32))  # the search ran at full size
        else:  # the averaged plane's mask (the dropped remainder is under f pixels wide)
            heat = resize_map(mask.astype(np.float32), *map_shape(g.shape[:2]))
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
                        f"No duplicated region found: the strongest self-similarity shifts "
                        f"(>= {MIN_SHIFT * f} px) did not verify over {MIN_CELLS} or more "
                        f"{CELL * f}x{CELL * f} blocks ({rejected} rejected as repeating texture "
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
                    "other_repeat_mismatch": (
                        round(p.alt_mismatch, 3) if np.isfinite(p.alt_mismatch) else None
                    ),
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
        if f > 1:  # a caveat the reader can check, after the findings
            evidence.append(_scale_evidence(f, g.size))
            details["averaged_over_px"] = f
        return self.result(score, evidence=evidence, heatmap=heat, details=details)


def _pair_evidence(p: Pair) -> Evidence:
    dy, dx = p.shift
    return Evidence(
        kind="copy_move.pair",
        summary=(
            f"Region {bbox_words(p.a)} reappears at {bbox_words(p.b)} (shift dx={dx}, dy={dy} px): "
            f"{p.cells} blocks of {p.block}x{p.block} px agree with median mismatch "
            f"{p.mismatch:.2f} "
            f"(0 = identical, {MAX_RATIO} = limit), while their best match at any other repeat "
            f"of the image's texture is {_alt_words(p.alt_mismatch)}; one of the two is a copy "
            "of the other."
        ),
        value=p.cells,
        bbox=p.b,
    )


def _scale_evidence(f: int, pixels: int) -> Evidence:
    return Evidence(
        kind="copy_move.scale",
        summary=(
            f"The search ran on the image averaged over {f}x{f} pixels ({pixels / 1e6:.0f} MP "
            f"is above {COPY_MOVE_MAX_PIXELS / 1e6:.0f} MP): a duplicated region smaller than "
            f"{MIN_CELLS} blocks of {CELL * f}x{CELL * f} px is not looked for."
        ),
        value=f,
    )


def _alt_words(alt: float) -> str:
    return f"{alt:.2f}" if np.isfinite(alt) else "no match"
