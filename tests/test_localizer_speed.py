"""The learned localizer's fast paths give the very bits of the plain whole-image computation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from forenscope.forgeries import synthetic_photo
from forenscope.learned.localizer import features, onnx_trees
from forenscope.learned.localizer.features import (
    BLOCK,
    GHOST_QUALITIES,
    _grid_phase_energy,
    _jpeg_error,
    _log,
    _ycbcr,
    block_mean,
)
from forenscope.learned.localizer.model import WEIGHTS, Localizer
from forenscope.residual import IMMERKAER, immerkaer_abs


def _whole_image_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The per-block statistics computed on the whole image at once (the pre-strip code)."""
    y, cb, cr = _ycbcr(rgb)
    out: dict[str, np.ndarray] = {}
    for name, ch in (("noise_y", y), ("noise_cb", cb), ("noise_cr", cr)):
        out[name] = _log(block_mean(np.abs(ndimage.correlate(ch, IMMERKAER, mode="reflect"))))
    out["diff1"] = _log(block_mean(np.abs(np.diff(y, axis=1, append=y[:, -1:]))))
    small = ndimage.gaussian_filter(block_mean(y, 2), 1.0)
    grad = np.hypot(
        np.diff(small, axis=0, append=small[-1:]), np.diff(small, axis=1, append=small[:, -1:])
    )
    out["texture"] = _log(
        block_mean(grad, BLOCK // 2)[: out["noise_y"].shape[0], : out["noise_y"].shape[1]]
    )
    out["noise_vs_texture"] = out["noise_y"] - out["texture"]
    out["bright"] = block_mean(y) / 255.0
    out["std"] = _log(np.sqrt(np.maximum(block_mean(y * y) - block_mean(y) ** 2, 0.0)))
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    out["clipped"] = block_mean(((hi >= 250) | (lo <= 3)).astype(np.float32))
    ghosts = np.stack([_log(block_mean(_jpeg_error(rgb, q))) for q in GHOST_QUALITIES])
    for q, g in zip(GHOST_QUALITIES, ghosts, strict=True):
        out[f"ghost_{q}"] = g
        out[f"ghost_{q}_shape"] = g - ghosts.mean(axis=0)
    for name, axis in (("grid_h", 1), ("grid_v", 0)):
        e = _grid_phase_energy(y, axis) + 0.05
        out[name] = np.log(e[..., 7] / e[..., :7].mean(axis=-1))
        out[f"{name}_peak"] = np.log(e.max(axis=-1) / np.median(e, axis=-1))
    return out


def _jpeg_photo(h: int, w: int, seed: int) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(h, w, seed=seed)).save(buf, "JPEG", quality=88)
    return np.array(Image.open(buf).convert("RGB"))


@pytest.mark.parametrize(
    ("h", "w", "jpeg_strip", "strip"),
    [
        (32, 32, 32, 4),  # one block row
        (161, 107, 2, 1),  # remainder rows and columns, many strips, last strip one block row
        (176, 130, 3, 2),  # no remainder rows: the bottom row's differences are the zero pad
        (203, 96, 32, 4),  # one strip
        (250, 161, 4, 3),  # sub-strips that do not divide the re-save strips
    ],
)
def test_strips_give_the_whole_image_bits(
    monkeypatch: pytest.MonkeyPatch, h: int, w: int, jpeg_strip: int, strip: int
) -> None:
    rgb = _jpeg_photo(h, w, seed=h)
    rgb[:9, :13] = 255  # clipped pixels
    rgb[-5:, -7:] = 0
    expected = _whole_image_features(rgb)
    monkeypatch.setattr(features, "JPEG_STRIP_BLOCKS", jpeg_strip)
    monkeypatch.setattr(features, "strip_blocks", lambda width: strip)
    monkeypatch.setattr(features, "GHOST_BLOCKS", strip)  # the re-save error's sub-strips
    got = features.raw_block_features(rgb)
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        assert np.array_equal(got[key], want), key


def test_strips_hold_about_the_same_pixels_at_any_width() -> None:
    # 8 block rows at 12 MP, 4 at 48 MP (the strip's temporaries do not grow with the width)
    assert [features.strip_blocks(w) for w in (3888, 4000, 8000, 8485, 100)] == [8, 8, 4, 4, 328]


def test_noise_image_gives_the_whole_image_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pure noise: large re-save errors and residuals, every block far from the others.
    rgb = np.random.default_rng(5).integers(0, 256, (147, 118, 3), dtype=np.uint8)
    expected = _whole_image_features(rgb)
    monkeypatch.setattr(features, "JPEG_STRIP_BLOCKS", 2)
    monkeypatch.setattr(features, "strip_blocks", lambda width: 1)
    got = features.raw_block_features(rgb)
    for key, want in expected.items():
        assert np.array_equal(got[key], want), key


def test_resave_decodes_into_the_buffer_as_pillow_does() -> None:
    import io

    from PIL import Image

    rgb = _jpeg_photo(80, 72, seed=2)
    out = np.zeros((80, 72, 4), dtype=np.uint8)
    features._resave_into(Image.fromarray(rgb), 65, out)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=65, subsampling=2)
    assert np.array_equal(out[..., :3], np.asarray(Image.open(buf).convert("RGB")))


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A copy of the shipped weights in a folder of its own (the graph cache sits beside it)."""
    import shutil

    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "weights"
    folder.mkdir()
    return Path(shutil.copy(WEIGHTS, folder / WEIGHTS.name))


def _features() -> np.ndarray:
    x, _, _ = features.image_features(_jpeg_photo(96, 112, seed=4))
    return x


def test_cached_tree_graph_gives_the_same_scores_without_onnx(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    x = _features()
    first = Localizer.load(weights)
    want = onnx_trees.raw_score(onnx_trees.build_session(first.forest, len(first.feature_names)), x)
    assert np.array_equal(first.raw_score(x), want)
    cached = onnx_trees.cache_paths(weights)[0]
    assert cached.parent == tmp_path / "cache" / "models" / "localizer" and cached.is_file()

    def no_onnx(*args: object) -> bytes:
        raise AssertionError("the graph was rebuilt")

    monkeypatch.setattr(onnx_trees, "build_model", no_onnx)
    assert np.array_equal(Localizer.load(weights).raw_score(x), want)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_damaged_tree_graph_cache_is_rebuilt(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    x = _features()
    want = Localizer.load(weights).raw_score(x)
    cached = onnx_trees.cache_paths(weights)[0]
    blob = bytearray(cached.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x40  # still parses as a graph, with one value changed
    elif damage == "truncate":
        del blob[len(blob) // 3 :]
    else:
        blob[:] = b"not a graph"
    cached.write_bytes(bytes(blob))
    assert onnx_trees.read_cached(weights) is None
    assert np.array_equal(Localizer.load(weights).raw_score(x), want)
    assert onnx_trees.read_cached(weights) is not None  # written again, intact


def test_stale_or_unwritable_cache_places(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"")  # a file where the cache folder would go: it cannot be created
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(blocked))
    x = _features()
    want = Localizer.load(weights).raw_score(x)
    beside = onnx_trees.cache_paths(weights)[1]
    assert beside.parent == weights.parent and beside.is_file()
    # other weights (here: the same trees under another version name) do not use that graph
    model = dataclasses.replace(Localizer.load(weights), version="other")
    model.save(weights.with_name("other.npz"))
    weights.unlink()
    weights.with_name("other.npz").rename(weights)
    assert onnx_trees.cache_paths(weights)[1] != beside
    assert onnx_trees.read_cached(weights) is None
    assert np.array_equal(Localizer.load(weights).raw_score(x), want)


@pytest.mark.parametrize("shape", [(16, 16), (37, 70), (64, 4243 // 8), (130, 33)])
def test_fast_block_means_add_like_numpy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[1])
    # wide dynamic range, so any change in the order of the float32 additions shows
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)
    assert np.array_equal(features._block_mean16(a), block_mean(a))
    assert np.array_equal(features._half_mean(a), block_mean(a, 2))


@pytest.mark.parametrize(
    ("rows", "top", "n"), [(18, 1, 16), (17, 0, 16), (17, 1, 16), (16, 0, 16), (43, 1, 37)]
)
def test_immerkaer_residual_adds_like_scipy(rows: int, top: int, n: int) -> None:
    rng = np.random.default_rng(rows + top)
    # luma-like values and signed chroma-like values with tiny and large magnitudes
    for ch in (
        (rng.random((rows, 53)) * 255).astype(np.float32),
        (rng.standard_normal((rows, 53)) * 10.0 ** rng.integers(-4, 3, (rows, 53))).astype(
            np.float32
        ),
    ):
        want = np.abs(ndimage.correlate(ch, IMMERKAER, mode="reflect"))[top : top + n]
        assert np.array_equal(immerkaer_abs(ch, top, n, chunk=5), want)


@pytest.mark.parametrize(("rows", "nby"), [(33, 2), (32, 2), (40, 2), (17, 1)])
def test_grid_energies_add_like_numpy(rows: int, nby: int) -> None:
    rng = np.random.default_rng(rows)
    y = (rng.random((rows, 83)) * 255).astype(np.float32)
    assert np.array_equal(features._grid_energy_h(y), _grid_phase_energy(y, 1))
    # `y` ends the image when it has no row beyond its blocks
    assert np.array_equal(features._grid_energy_v(y, nby), _grid_phase_energy(y, 0)[:nby])
