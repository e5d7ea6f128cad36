"""Datasets, filters, sha256 checks, alignment, perturbations and the format guard."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forenscope.eval.align import Perturbation, Preprocess, prepare
from forenscope.eval.datasets import Filter, load_dataset, load_folder, load_manifest, select
from forenscope.eval.guards import format_warnings
from forenscope.eval.runner import score_sample
from forenscope.eval.systems import make_image_system

COLUMNS = ["path", "label", "generator", "family", "scope", "mask", "source", "licence", "width",
           "height", "format", "sha256"]  # fmt: skip


def make_dataset(root: Path, n_real: int = 6, n_fake: int = 6, n_tampered: int = 2, *,
                 size: int = 24, fake_format: str = "PNG", fake_low: int = 150,
                 real_format: str = "JPEG", **fake_save: object) -> Path:  # fmt: skip
    """A synthetic manifest dataset: dark reals (JPEG), bright fakes (unless `fake_low=0`: the
    same pixel statistics), tampered images with masks."""
    rng = np.random.default_rng(0)
    rows = []

    def save(rel: str, arr: np.ndarray, fmt: str, **kw: object) -> str:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path, fmt, **kw)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for i in range(n_real):
        arr = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
        rel = f"real/r{i:04d}." + ("jpg" if real_format == "JPEG" else "png")
        sha = save(rel, arr, real_format)
        rows.append([rel, "real", "camera", "camera", "none", "", "synth-real",
                     "test", size, size, real_format, sha])  # fmt: skip
    for i in range(n_fake):
        gen = ("biggan", "ldm")[i % 2]
        arr = rng.integers(fake_low, fake_low + 90, (size, size, 3), dtype=np.uint8)
        ext = "png" if fake_format == "PNG" else "jpg"
        sha = save(f"fake/{gen}/f{i:04d}.{ext}", arr, fake_format, **fake_save)
        fam = "gan" if gen == "biggan" else "diffusion"
        rows.append([f"fake/{gen}/f{i:04d}.{ext}", "fake", gen, fam, "global", "", "synth-fake",
                     "test", size, size, fake_format, sha])  # fmt: skip
    for i in range(n_tampered):
        arr = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
        arr[1:7, 1:7] = 240
        mask = np.zeros((size, size), np.uint8)
        mask[1:7, 1:7] = 255
        sha = save(f"tampered/t{i}.png", arr, "PNG")
        save(f"masks/t{i}.png", mask, "PNG")
        rows.append([f"tampered/t{i}.png", "tampered", "splice", "edit", "local",
                     f"masks/t{i}.png", "synth-tamp", "test", size, size, "PNG", sha])  # fmt: skip
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return root / "manifest.csv"


def test_manifest_filters_sample_limit(tmp_path: Path) -> None:
    samples = load_manifest(make_dataset(tmp_path))
    assert len(samples) == 14 and samples[0].width == 24
    fakes = select(samples, [Filter.parse("label=fake")])
    assert {s.label for s in fakes} == {"fake"} and len(fakes) == 6
    not_t = select(samples, [Filter.parse("label!=tampered"), Filter.parse("generator!=ldm")])
    assert len(not_t) == 9
    assert len(select(samples, [Filter.parse("generator=biggan,ldm")])) == 6
    a = select(samples, sample=5, seed=3)
    assert a == select(samples, sample=5, seed=3) and a != select(samples, sample=5, seed=4)
    assert len(select(samples, limit=2)) == 2
    with pytest.raises(ValueError, match="unknown column"):
        select(samples, [Filter.parse("lable=fake")])
    with pytest.raises(ValueError, match="expected"):
        Filter.parse("label")


def test_jsonl_manifest_and_folder_layout(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path)
    rows = list(csv.DictReader(manifest.open()))
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [s.path for s in load_manifest(jsonl)] == [s.path for s in load_manifest(manifest)]
    manifest.unlink()
    folder = load_folder(tmp_path)
    by_label = {lab: [s for s in folder if s.label == lab] for lab in ("real", "fake", "tampered")}
    assert len(by_label["real"]) == 6 and len(by_label["fake"]) == 6
    assert {s.generator for s in by_label["fake"]} == {"biggan", "ldm"}
    assert {s.family for s in by_label["fake"]} == {"gan", "diffusion"}
    assert all(s.mask.startswith("masks/") for s in by_label["tampered"])
    assert len(load_dataset(tmp_path)) == 14


def test_sha256_mismatch_is_a_recorded_error(tmp_path: Path) -> None:
    samples = load_manifest(make_dataset(tmp_path))
    target = samples[0]
    target.file.write_bytes(target.file.read_bytes() + b"x")
    rec = score_sample(make_image_system("noop"), target, Preprocess("none"))
    assert str(rec.error).startswith("sha256 mismatch") and rec.fake_probability is None
    ok = score_sample(make_image_system("noop"), samples[1], Preprocess("none"))
    assert ok.error is None and ok.sha256_seen == samples[1].sha256


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_alignment_makes_every_class_identical_in_format(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (60, 40), "red").save(png, "PNG", pnginfo=None)
    jpg = io.BytesIO()
    Image.new("RGB", (30, 90), "blue").save(jpg, "JPEG", quality=70, exif=b"Exif\x00\x00")
    mask = np.zeros((40, 60), bool)
    mask[:, :30] = True
    pre = Preprocess("jpeg90", 32)
    a, m = prepare(png.getvalue(), pre, "a", mask)
    b, _ = prepare(jpg.getvalue(), pre, "b")
    for data in (a, b):
        im = _decode(data)
        assert im.format == "JPEG" and im.size == (32, 32) and not im.info.get("exif")
    assert m is not None and m.shape == (32, 32) and 0.3 < m.mean() < 0.7
    assert _decode(prepare(jpg.getvalue(), Preprocess("png", 0), "c")[0]).size == (30, 90)
    assert prepare(jpg.getvalue(), Preprocess("none"), "c")[0] == jpg.getvalue()


def test_aligned_mask_stays_on_the_object_and_matches_the_detector_crop() -> None:
    from forenscope.learned.preprocess import clip_crop

    rgb = np.zeros((90, 150, 3), np.uint8)
    rgb[20:50, 70:110] = 255  # a white block off-centre in a landscape image
    mask = rgb[..., 0] > 0
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    data, m = prepare(buf.getvalue(), Preprocess("png", 48), "k", mask)
    pixels = np.asarray(_decode(data).convert("L"), dtype=float)
    assert m is not None and m.shape == pixels.shape == (48, 48)
    assert pixels[m].mean() > 200 and pixels[~m].mean() < 40  # mask registered with the block
    crop, _ = clip_crop(Image.fromarray(rgb), 48)  # the eval crop is the detectors' crop
    assert np.array_equal(np.asarray(crop.convert("L"), dtype=float), pixels)


def test_perturbations_are_seeded_and_move_the_mask(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    mask = np.zeros((64, 64), bool)
    mask[:32] = True
    steps = tuple(
        Perturbation.parse(p) for p in ("noise:5", "crop:0.5", "blur:1", "resize:2", "jpeg:60")
    )
    pre = Preprocess("png", 0, steps, seed=7)
    a, ma = prepare(buf.getvalue(), pre, "k1", mask)
    b, _ = prepare(buf.getvalue(), pre, "k1", mask)
    c, _ = prepare(buf.getvalue(), pre, "k2", mask)
    assert a == b and a != c  # same key + seed -> same pixels
    assert _decode(a).size == (64, 64) and ma is not None and ma.shape == (64, 64)
    jpeg_only = Preprocess("none", 0, (Perturbation.parse("jpeg:60"),))
    assert _decode(prepare(buf.getvalue(), jpeg_only, "k")[0]).format == "JPEG"
    with pytest.raises(ValueError, match="perturbation"):
        Perturbation.parse("sharpen:2")


def test_format_guard_warns_when_classes_differ(tmp_path: Path) -> None:
    samples = load_manifest(make_dataset(tmp_path))
    _, warnings = format_warnings(samples, "none")
    assert any("FORMAT DIFFERS" in w and "OFF" in w for w in warnings)
    same = load_manifest(make_dataset(tmp_path / "b", n_tampered=0, fake_format="JPEG"))
    assert format_warnings(same, "jpeg90")[1] == []


@pytest.mark.data
def test_shared_data_guard_and_sha256(shared_data: Path) -> None:
    samples = load_dataset(shared_data)
    assert len(samples) > 10_000
    no_cifake = select(samples, [Filter.parse("source!=cifake")])
    assert {s.source for s in no_cifake}.isdisjoint({"cifake"}) and len(no_cifake) < 1000
    _, warnings = format_warnings(no_cifake, "none")
    assert any("FORMAT DIFFERS BY CLASS: real" in w for w in warnings)  # the README's confound
    for s in select(no_cifake, sample=10, seed=1):
        rec = score_sample(make_image_system("noop"), s, Preprocess("none"))
        assert rec.error is None and rec.sha256_seen == s.sha256
