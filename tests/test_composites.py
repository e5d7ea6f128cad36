"""Partly generated composites (train/composites.py) on synthetic arrays only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from forenscope.train.composites import (
    AREA_RANGE,
    blob_mask,
    composite_rows,
    fit_to_size,
    make_composite,
    mask_to_crop,
    paste,
    patch_coverage,
    patch_labels,
    plan_pairs,
    real_folds,
    rect_mask,
)
from forenscope.train.data import TrainingImage


def noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_hard_paste_puts_donor_exactly_under_the_mask() -> None:
    real, donor = noise((40, 60, 3), 1), noise((40, 60, 3), 2)
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:50] = True
    out = paste(real, donor, mask)
    assert np.array_equal(out[mask], donor[mask])
    assert np.array_equal(out[~mask], real[~mask])


def test_feathered_seam_blends_only_near_the_edge() -> None:
    real, donor = noise((80, 80, 3), 3), noise((80, 80, 3), 4)
    mask = np.zeros((80, 80), bool)
    mask[20:60, 15:65] = True
    sigma = 2.0
    out = paste(real, donor, mask, feather=sigma)
    dist_in = distance_transform_edt(mask)
    dist_out = distance_transform_edt(~mask)
    deep_in, far_out = dist_in > 5 * sigma, dist_out > 5 * sigma
    assert np.array_equal(out[deep_in], donor[deep_in])
    assert np.array_equal(out[far_out], real[far_out])
    seam = (dist_in == 1) | (dist_out == 1)
    # on the seam the result is a mix: it differs from the donor somewhere and from the real too
    assert np.any(out[seam] != donor[seam]) and np.any(out[seam] != real[seam])


@pytest.mark.parametrize("kind", ["rect", "blob"])
@pytest.mark.parametrize("shape", [(96, 96), (64, 128)])
def test_mask_area_within_the_requested_range(kind: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    make = rect_mask if kind == "rect" else blob_mask
    areas = [make(shape, rng, AREA_RANGE).mean() for _ in range(25)]
    assert all(AREA_RANGE[0] <= a <= AREA_RANGE[1] for a in areas)
    assert max(areas) - min(areas) > 0.08  # the area is drawn, not fixed
    narrow = [make(shape, rng, (0.2, 0.25)).mean() for _ in range(10)]
    assert all(0.2 <= a <= 0.25 for a in narrow)


def test_blob_is_one_irregular_region_not_a_rectangle() -> None:
    from scipy.ndimage import label

    mask = blob_mask((128, 128), np.random.default_rng(5))
    _, n = label(mask)
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert n == 1
    assert mask.sum() < 0.95 * box


def test_impossible_area_raises() -> None:
    with pytest.raises(ValueError, match="rectangle"):
        rect_mask((1, 1), np.random.default_rng(0))


def test_make_composite_brings_both_images_to_one_size() -> None:
    real = Image.fromarray(noise((90, 120, 3), 6))
    donor = Image.fromarray(noise((200, 150, 3), 7), "RGB").convert("L")  # another size and mode
    c = make_composite(real, donor, np.random.default_rng(1), size=(64, 64), feather_prob=0.0)
    assert c.image.shape == (64, 64, 3) and c.mask.shape == (64, 64) and c.feather == 0.0
    base, src = fit_to_size(real, (64, 64)), fit_to_size(donor, (64, 64))
    assert np.array_equal(c.image[c.mask], src[c.mask])
    assert np.array_equal(c.image[~c.mask], base[~c.mask])
    assert AREA_RANGE[0] <= c.area <= AREA_RANGE[1]


def test_composites_are_seeded() -> None:
    real, donor = noise((70, 70, 3), 8), noise((70, 70, 3), 9)

    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        c = make_composite(real, donor, np.random.default_rng(seed), size=(48, 48))
        return c.image, c.mask

    a, b, other = make(3), make(3), make(4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], other[1])


@pytest.mark.parametrize(
    ("real", "donor", "match"),
    [
        (noise((10, 10, 3), 0), noise((10, 12, 3), 1), "differ"),
        (noise((10, 10), 0), noise((10, 10), 1), "uint8"),
        (noise((10, 10, 3), 0).astype(np.uint16), noise((10, 10, 3), 1), "uint8"),
        (noise((10, 10, 4), 0), noise((10, 10, 4), 1), "uint8"),
    ],
)
def test_paste_rejects_incompatible_images(real: np.ndarray, donor: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        paste(real, donor, np.ones(real.shape[:2], bool))


def test_paste_rejects_a_mask_of_another_size() -> None:
    img = noise((10, 10, 3), 0)
    with pytest.raises(ValueError, match="mask"):
        paste(img, img, np.ones((9, 10), bool))


def test_make_composite_rejects_16_bit_and_float_modes() -> None:
    deep = Image.fromarray(np.zeros((20, 20), np.uint16))  # mode I;16
    ok = noise((20, 20, 3), 0)
    with pytest.raises(ValueError, match="not 8-bit"):
        make_composite(ok, deep, np.random.default_rng(0), size=(16, 16))
    with pytest.raises(ValueError, match="not 8-bit"):
        make_composite(
            Image.fromarray(np.zeros((20, 20), np.float32)), ok, np.random.default_rng(0)
        )


def test_patch_labels_on_a_hand_made_mask() -> None:
    mask = np.zeros((224, 224), bool)
    mask[0:16, 0:16] = True  # patch (0, 0): fully covered
    mask[16:24, 16:32] = True  # patch (1, 1): half covered -> positive (>= 0.5)
    mask[32:36, 32:48] = True  # patch (2, 2): a quarter -> negative
    mask[200:224, 208:224] = True  # patch (13, 13) full, (12, 13) half
    cov = patch_coverage(mask)
    assert cov[0, 0] == 1.0 and cov[1, 1] == 0.5 and cov[2, 2] == 0.25
    want = np.zeros((14, 14), bool)
    want[0, 0] = want[1, 1] = want[13, 13] = want[12, 13] = True
    assert np.array_equal(patch_labels(mask), want)


def test_mask_is_cropped_like_the_image() -> None:
    # portrait 448x224: the shorter side is already 224, clip_crop keeps rows 112..336
    mask = np.zeros((448, 224), bool)
    mask[0:100, :] = True  # cropped away: invisible to the encoder
    mask[112:128, 0:16] = True  # the crop's first patch
    labels = patch_labels(mask)
    assert labels[0, 0] and labels.sum() == 1
    # square 448: halved; a 32 px block becomes the first 16 px patch
    big = np.zeros((448, 448), bool)
    big[0:32, 0:32] = True
    cov = patch_coverage(big)
    assert cov[0, 0] > 0.9 and cov[0, 1] < 0.1 and cov[1, 0] < 0.1
    assert mask_to_crop(big).shape == (224, 224)


def sample(name: str, label: str, generator: str, source: str) -> TrainingImage:
    return TrainingImage(Path(name), label, generator, "x", source, "test", name)


def test_plan_pairs_holds_each_generator_to_its_real_fold() -> None:
    reals = [sample(f"r{i}", "real", "camera", f"s{i % 3}") for i in range(30)]
    donors = [sample(f"d{i}", "fake", f"g{i % 4}", "gen") for i in range(12)]
    pairs = plan_pairs(reals, donors, seed=1, per_donor=2, controls_per_fold=3)
    assert pairs == plan_pairs(reals, donors, seed=1, per_donor=2, controls_per_fold=3)
    folds = real_folds(reals, 5, seed=1)
    gen_fold = {f"g{i}": i % 5 for i in range(4)}
    firsts = [p for p in pairs if not p.control][::2]
    assert len(firsts) == 12
    assert all(folds[p.real.sha256] == gen_fold[p.donor.generator] for p in firsts)
    controls = [p for p in pairs if p.control]
    assert len(controls) == 15
    assert all(folds[p.real.sha256] == folds[p.donor.sha256] for p in controls)
    assert all(p.real != p.donor for p in controls)
    assert sorted(set(folds.values())) == [0, 1, 2, 3, 4]


def test_composite_rows_labels_follow_the_mask() -> None:
    rng = np.random.default_rng(0)
    comps = [
        make_composite(noise((224, 224, 3), i), noise((224, 224, 3), 10 + i), rng, size=(224, 224))
        for i in range(3)
    ]
    # fake patch features: feature 0 = the patch's own coverage, so rows can be checked
    patches = np.stack(
        [np.repeat(patch_coverage(c.mask).reshape(196, 1), 8, axis=1) for c in comps]
    )
    x, y, groups = composite_rows(comps, patches, per_image=196)
    assert x.shape == (3 * 196, 8) and len(groups) == len(y)
    assert np.array_equal(y, (x[:, 0] >= 0.5).astype(int))
    assert y.mean() == pytest.approx(np.mean([patch_labels(c.mask).mean() for c in comps]))
    _, y_few, _ = composite_rows(comps, patches, per_image=20)
    assert len(y_few) == 60


def write_manifest(root: Path) -> Path:
    """12 bluish 'real' and 8 reddish 'generated' PNGs (2 generators) + a manifest."""
    rows = ["path,label,generator,family,scope,mask,source,licence,width,height,format,sha256"]
    rng = np.random.default_rng(0)
    for i in range(20):
        fake = i >= 12
        base = np.array([200, 60, 40] if fake else [40, 60, 200], np.int16)
        img = np.clip(base + rng.integers(-30, 30, (72, 80, 3)), 0, 255).astype(np.uint8)
        name = f"{'fake' if fake else 'real'}{i}.png"
        Image.fromarray(img).save(root / name)
        label, gen = ("fake", f"gen{i % 2}") if fake else ("real", "camera")
        rows.append(f"{name},{label},{gen},x,global,,src{i % 2},test,80,72,PNG,composites-test-{i}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "manifest.csv"


def test_composite_patch_dataset_trains_a_head_that_localizes(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from forenscope.eval.classification import auc as roc_auc
    from forenscope.learned.encoder import ClipEncoder
    from forenscope.learned.fake_encoder import build_fake_encoder
    from forenscope.train.composites import composite_patch_dataset
    from forenscope.train.fit import fit_head, group_folds

    encoder = ClipEncoder(build_fake_encoder(tmp_path / "enc.onnx"))
    manifest = write_manifest(tmp_path)
    kw: dict[str, Any] = {"per_donor": 2, "controls_per_fold": 1, "size": 64, "per_image": 49}
    data = composite_patch_dataset(manifest, encoder=encoder, **kw)
    n_comp = 8 * 2 + 5  # 2 per donor + 1 control per real fold
    assert data.x.shape == (n_comp * 49 + 20 * 33, 512)
    assert len(data.y) == len(data.groups) == len(data.x) and len(data.samples) == 20
    assert np.allclose(np.linalg.norm(data.x, axis=1), 1.0, atol=1e-3)
    assert 0.05 < data.y[: n_comp * 49].mean() < 0.4  # composites: the pasted share
    again = composite_patch_dataset(manifest, encoder=encoder, **kw)
    assert np.array_equal(again.y, data.y) and np.allclose(again.x, data.x)
    test, *rest = group_folds(data.y, data.groups, seed=0)  # whole groups held out
    train = np.concatenate(rest)
    head = fit_head(data.x[train], data.y[train], name="t", feature="f", classes=("r", "g"))
    # reddish patches vs bluish ones; the seam patches are the ambiguous part
    assert roc_auc(data.y[test], head.logit(data.x[test])) > 0.8


def test_train_cli_writes_a_composite_patch_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    import json

    from click.testing import CliRunner

    from forenscope.learned.fake_encoder import build_fake_encoder
    from forenscope.train.cli import train_cli

    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(build_fake_encoder(tmp_path / "enc.onnx")))
    manifest = write_manifest(tmp_path)
    out = tmp_path / "heads"
    args = ["--manifest", str(manifest), "--detector", "clip-patch-composite", "--out", str(out)]
    res = CliRunner().invoke(train_cli, args)
    assert res.exit_code == 0, res.output
    head = json.loads((out / "clip-patch-composite.json").read_text())
    # wiring only: that such a head localizes is tested above with the paste-sized settings
    assert head["feature"] == "clip-patch-composite" and head["meta"]["metrics"]["n"] > 0
    card = (out / "clip-patch-composite.md").read_text()
    assert "pasted" in card and "--detector clip-patch-composite" in card
