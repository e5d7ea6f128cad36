"""The learned localizer: expert contract, shipped weights on a synthetic splice, training code."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from forenscope.experts.learned_localizer import LearnedLocalizer
from forenscope.forgeries import Box, example_photo, make_splice, mask_iou, synthetic_photo
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from forenscope.learned.localizer import onnx_trees
from forenscope.learned.localizer.features import _jpeg_error, image_features
from forenscope.learned.localizer.model import Localizer, shipped
from forenscope.learned.localizer.trees import export_hgb
from forenscope.train import localizer as trainer
from forenscope.train.localizer_synth import KINDS, make_sample

# IoU of (map >= 0.5) with the pasted box, measured with the shipped weights: 0.92 (0.90 and 0.86
# with donor seeds 8 and 9). A final save at quality 90 instead of 95 drops it to ~0.01: a known
# blind spot written up in the model card.
SPLICE_IOU_BOUND = 0.8


def _png(rgb: np.ndarray) -> ImageInput:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return load_image(buf.getvalue())


def test_expert_on_tiny_image_gives_a_map_in_unit_range() -> None:
    res = LearnedLocalizer().analyze(_png(synthetic_photo(96, 128, seed=3)))
    assert res.judged and res.score is not None and 0.0 <= res.score <= 1.0
    assert res.heatmap is not None and res.heatmap.shape == (96, 128)
    assert res.heatmap.dtype == np.float32
    assert float(res.heatmap.min()) >= 0.0 and float(res.heatmap.max()) <= 1.0
    assert res.evidence and res.evidence[0].kind.startswith("learned_localizer.")


def test_expert_is_deterministic_and_serialisable() -> None:
    from forenscope.types import ExpertResult

    image = _png(synthetic_photo(200, 160, seed=1))
    first, again = LearnedLocalizer().analyze(image), LearnedLocalizer().analyze(image)
    assert first.error is None and first.score == again.score
    assert [e.summary for e in first.evidence] == [e.summary for e in again.evidence]
    ExpertResult.model_validate_json(first.model_dump_json())


def test_expert_abstains_below_its_minimum_size() -> None:
    res = LearnedLocalizer().analyze(_png(synthetic_photo(40, 40, seed=1)))
    assert res.score is None and res.abstain_reason and "64 px" in res.abstain_reason


def test_localizes_a_synthetic_splice_on_the_shipped_photo() -> None:
    base = example_photo()
    donor = synthetic_photo(base.shape[0], base.shape[1], seed=7)
    box = Box(560, 240, 288, 224)
    forgery = make_splice(base, donor, box, donor_xy=(100, 100), quality=95)
    res = LearnedLocalizer().analyze(load_image(forgery.data))
    assert res.heatmap is not None
    iou = mask_iou(res.heatmap >= 0.5, forgery.mask)
    assert iou >= SPLICE_IOU_BOUND, iou
    region = next(e for e in res.evidence if e.kind == "learned_localizer.region")
    assert region.bbox is not None and abs(region.bbox.x + region.bbox.width / 2 - 704) < 100


def test_shipped_weights_match_their_feature_set_and_onnx_matches_numpy() -> None:
    model = shipped()
    x, grid, names = image_features(synthetic_photo(160, 192, seed=2))
    assert tuple(names) == model.feature_names and grid == (10, 12)
    if onnx_trees.available():
        fast = model.raw_score(x)
        assert np.allclose(fast, model.forest.raw_score(x), atol=1e-4)


def _camera_like(h: int, w: int, seed: int) -> np.ndarray:
    """A synthetic photo that went through a camera's JPEG (q 92), as the training bases did."""
    from forenscope.forgeries import jpeg_roundtrip

    return jpeg_roundtrip(synthetic_photo(h, w, seed=seed), 92)


def test_synthetic_forgeries_are_seeded_and_cover_every_kind() -> None:
    photo, donor, gen = (
        _camera_like(300, 340, 0),
        _camera_like(300, 340, 1),
        synthetic_photo(128, 128, seed=2),
    )
    a = make_sample(photo, donor, gen, np.random.default_rng(5))
    b = make_sample(photo, donor, gen, np.random.default_rng(5))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.mask, b.mask) and a.chain == b.chain
    for i, kind in enumerate(KINDS):
        s = make_sample(photo, donor, gen, np.random.default_rng(i), kind=kind)
        assert s.kind == kind and s.mask.shape == s.rgb.shape[:2] and s.mask.dtype == np.float32
        assert 0.0 <= float(s.mask.min()) <= float(s.mask.max()) <= 1.0
        share = float((s.mask >= 0.5).mean())
        assert (share == 0.0) if kind == "none" else (0.005 < share < 0.9), (kind, share)


def test_camera_photos_split_three_ways_by_path_hash() -> None:
    paths = [f"real/metadata-extractor-images/cam{i}.jpg" for i in range(400)]
    parts = [trainer.camera_part(p) for p in paths]
    assert parts == [trainer.camera_part(p) for p in paths]  # stable
    shares = {k: parts.count(k) / len(parts) for k in ("train", "val", "held_out")}
    assert abs(shares["train"] - 0.5) < 0.08 and abs(shares["held_out"] - 0.35) < 0.08


def test_numpy_trees_reproduce_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0.3).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=15).fit(x, y)
    forest = export_hgb(clf)
    assert np.allclose(forest.raw_score(x), clf.decision_function(x), atol=1e-5)


def test_training_runs_end_to_end_on_a_tiny_synthetic_set(tmp_path: Path) -> None:
    from PIL import Image

    files = []
    for i in range(4):
        files.append(tmp_path / f"p{i}.jpg")
        Image.fromarray(synthetic_photo(288, 320, seed=i)).save(files[-1], quality=92)
    gen = tmp_path / "g.png"
    Image.fromarray(synthetic_photo(128, 128, seed=9)).save(gen)

    def tasks(bases: list[Path], n: int, seed: int, sub: bool) -> list[trainer.Task]:
        return [
            trainer.Task(bases[k % len(bases)], bases[-1], gen, seed + k, sub) for k in range(n)
        ]

    train = trainer.build(tasks(files[:3], 12, 0, True), jobs=1)
    val = trainer.build(tasks(files[3:], 6, 100, False), jobs=1)
    assert len(train) == 12 and trainer.xy(train)[1].any()
    assert all(len(it.frac) <= trainer.ROWS_PER_IMAGE for it in train)
    names = image_features(synthetic_photo(64, 64, seed=0))[2]
    tiny = {"tiny": {"max_iter": 15, "max_leaf_nodes": 7}}
    model, log = trainer.fit_select(train, val, names, 0, tiny)
    assert log["selected"] == model.version and 0.0 <= log[model.version]["f1"] <= 1.0
    path = tmp_path / "w.npz"
    model.save(path)
    again = Localizer.load(path)
    assert (again.version, again.calib_a, again.val_threshold) == (
        model.version,
        model.calib_a,
        model.val_threshold,
    )
    x = val[0].x
    assert np.allclose(again.forest.raw_score(x), model.forest.raw_score(x))
    hm = again.pixel_map(synthetic_photo(256, 320, seed=4))
    assert hm.shape == (256, 320) and 0.0 <= float(hm.min()) <= float(hm.max()) <= 1.0


def test_jpeg_error_is_the_float_mean_of_squared_rgb_changes() -> None:
    # The integer (uint16-square) computation must equal the plain float32 one exactly.
    rgb = synthetic_photo(96, 128, seed=3)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=80, subsampling=2)
    again = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)
    expected = ((again - rgb.astype(np.float32)) ** 2).sum(axis=2) / 3.0
    got = _jpeg_error(rgb, 80)
    assert got.dtype == np.float32 and got.max() > 0
    assert np.array_equal(got, expected.astype(np.float32))
