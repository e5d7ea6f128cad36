"""Provenance experts: EXIF/XMP, generator text chunks, C2PA manifests, invisible watermarks."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from forenscope.experts import watermark as wm
from forenscope.experts.c2pa_manifest import C2paExpert, judge, summarize
from forenscope.experts.exif import ExifExpert
from forenscope.experts.generator_metadata import (
    MAX_CHUNK,
    GeneratorMetadataExpert,
    parse_a1111,
    png_text_chunks,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from forenscope.types import ExpertResult
from provenance_fixtures import (
    IPTC,
    embed_watermark,
    exif_with_thumbnail,
    jpeg_bytes,
    make_input,
    natural_rgb,
    png_bytes,
    sign_c2pa,
    xmp_packet,
)

RGB = natural_rgb(64, 64)
A1111 = (
    "a castle on a hill, (masterpiece:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2", '
    "Version: v1.7.0"
)


def proves(result: ExpertResult) -> set[str]:
    return {e.proves for e in result.evidence if e.proves}


def judged(result: ExpertResult) -> float:
    assert result.error is None, result.error
    assert result.score is not None, result.abstain_reason
    return result.score


# -- specs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "name", "targets", "requires"),
    [
        (ExifExpert, "exif", "both", []),
        (GeneratorMetadataExpert, "generator_metadata", "ai_generated", []),
        (C2paExpert, "c2pa", "both", ["c2pa"]),
        (wm.WatermarkExpert, "watermark", "ai_generated", ["pywt", "cv2"]),
    ],
)
def test_specs(cls: type, name: str, targets: str, requires: list[str]) -> None:
    spec = cls.spec
    assert (spec.name, spec.kind, spec.version, spec.targets) == (
        name,
        "provenance",
        "1.0",
        targets,
    )
    assert spec.requires == requires and spec.licence.startswith("Apache-2.0")
    assert spec.extra == {"c2pa": "c2pa", "watermark": "watermark"}.get(name)


# -- exif ------------------------------------------------------------------------------------
def test_exif_abstains_without_metadata() -> None:
    result = ExifExpert().analyze(make_input(png_bytes(RGB)))
    assert result.score is None and "proves nothing" in (result.abstain_reason or "")


def test_exif_editor_software() -> None:
    data = jpeg_bytes(RGB, tags={0x0131: "Adobe Photoshop 24.0 (Windows)"})
    result = ExifExpert().analyze(make_input(data))
    assert judged(result) >= 0.7 and not proves(result)
    assert "Software = 'Adobe Photoshop 24.0 (Windows)'" in result.evidence[0].summary


@pytest.mark.parametrize(
    ("tags", "exif_ifd"),
    [
        ({0x0131: "Adobe Firefly"}, None),
        (None, {0x9286: b"ASCII\0\0\0Made with OpenAI Labs"}),  # DALL-E 2 UserComment
    ],
)
def test_exif_generator_proves_ai(tags: dict | None, exif_ifd: dict | None) -> None:
    result = ExifExpert().analyze(make_input(jpeg_bytes(RGB, tags=tags, exif_ifd=exif_ifd)))
    assert judged(result) >= 0.95 and proves(result) == {"ai_generated"}


def test_exif_generator_word_in_caption_is_only_a_hint() -> None:
    tags = {0x010E: "My painting, inspired by Midjourney renders"}
    result = ExifExpert().analyze(make_input(jpeg_bytes(RGB, tags=tags)))
    assert 0.8 <= judged(result) < 0.95 and not proves(result)


def test_exif_lookalike_names_do_not_match() -> None:
    tags = {0x0131: "Imagenomic Portraiture 3", 0x010E: "imagen de la playa"}
    result = ExifExpert().analyze(make_input(jpeg_bytes(RGB, tags=tags)))
    assert not any(e.kind == "exif.generator" for e in result.evidence)


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("trainedAlgorithmicMedia", "ai_generated"),
        ("compositeWithTrainedAlgorithmicMedia", "tampered"),
    ],
)
def test_exif_iptc_digital_source_type(code: str, label: str) -> None:
    xmp = xmp_packet(f"<Iptc4xmpExt:DigitalSourceType>{IPTC}{code}</Iptc4xmpExt:DigitalSourceType>")
    result = ExifExpert().analyze(make_input(jpeg_bytes(RGB, xmp=xmp)))
    assert judged(result) >= 0.95 and proves(result) == {label}
    assert code in result.evidence[0].summary


def test_exif_xmp_history_and_ancestors() -> None:
    xmp = xmp_packet(
        '<xmpMM:History><rdf:Seq><rdf:li stEvt:action="saved" '
        'stEvt:softwareAgent="GIMP 2.10"/></rdf:Seq></xmpMM:History>'
        "<photoshop:DocumentAncestors><rdf:Bag><rdf:li>xmp.did:1</rdf:li><rdf:li>xmp.did:2"
        "</rdf:li></rdf:Bag></photoshop:DocumentAncestors>"
    )
    result = ExifExpert().analyze(make_input(jpeg_bytes(RGB, xmp=xmp)))
    kinds = {e.kind for e in result.evidence}
    assert {"exif.editor", "xmp.document_ancestors"} <= kinds and judged(result) >= 0.75
    assert any("'GIMP 2.10'" in e.summary for e in result.evidence)


def test_exif_dates() -> None:
    ifd = {0x9003: "2019:05:01 10:00:00", 0x9004: "2019:05:01 10:00:00"}
    data = jpeg_bytes(RGB, tags={0x0132: "2023:01:02 09:00:00"}, exif_ifd=ifd)
    kinds = {e.kind for e in ExifExpert().analyze(make_input(data)).evidence}
    assert "exif.modified_later" in kinds and "exif.future_date" not in kinds
    data = jpeg_bytes(RGB, exif_ifd={0x9003: "2999:01:01 00:00:00"})
    kinds = {e.kind for e in ExifExpert().analyze(make_input(data)).evidence}
    assert "exif.future_date" in kinds


def test_exif_camera_is_weak_evidence_of_real() -> None:
    data = jpeg_bytes(RGB, tags={0x010F: "Canon", 0x0110: "Canon EOS 5D Mark IV"})
    result = ExifExpert().analyze(make_input(data))
    assert judged(result) <= 0.3 and result.confidence <= 0.3


def test_exif_thumbnail_mismatch() -> None:
    wide = make_input(jpeg_bytes(natural_rgb(90, 320), exif_raw=exif_with_thumbnail((160, 120))))
    assert any(e.kind == "exif.thumbnail_mismatch" for e in ExifExpert().analyze(wide).evidence)
    same = make_input(jpeg_bytes(natural_rgb(120, 160), exif_raw=exif_with_thumbnail((160, 120))))
    assert ExifExpert().analyze(same).score is None


def test_exif_uses_loader_fields_and_survives_junk() -> None:
    junk = make_input(
        png_bytes(RGB),
        exif={
            "Software": "x" * 10**6,
            "UserComment": bytes(range(256)) * 4000,
            "ImageDescription": "\0\x01\x02 DALL\x00E",
        },
        xmp="<x:xmpmeta><Iptc4xmpExt:DigitalSourceType>" + "<" * 100000,
    )
    result = ExifExpert().analyze(junk)
    assert result.error is None
    assert all(len(e.summary) < 600 for e in result.evidence)
    loader = make_input(png_bytes(RGB), exif={"Software": "Snapseed 2.0"})
    assert "Snapseed" in ExifExpert().analyze(loader).evidence[0].summary


# -- generator_metadata ----------------------------------------------------------------------
def test_parse_a1111() -> None:
    parsed = parse_a1111(A1111)
    assert parsed is not None
    assert parsed["prompt"] == "a castle on a hill, (masterpiece:1.2)"
    assert parsed["negative_prompt"] == "blurry, lowres"
    s = parsed["settings"]
    assert (s["Steps"], s["Sampler"], s["CFG scale"], s["Seed"]) == (
        "28",
        "DPM++ 2M Karras",
        "7",
        "1234567",
    )
    assert (s["Model"], s["Model hash"], s["Lora hashes"]) == (
        "v1-5-pruned-emaonly",
        "6ce0161689",
        "a: 1, b: 2",
    )
    assert parse_a1111("just a caption") is None
    extended = parse_a1111(A1111 + "\nTemplate: a {castle|tower}")
    assert extended is not None and extended["settings"]["Seed"] == "1234567"


def test_generator_a1111_png_proves() -> None:
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, {"parameters": A1111})))
    assert judged(result) >= 0.99 and proves(result) == {"ai_generated"}
    assert result.evidence[0].summary.startswith("text chunk 'parameters' = 'a castle")
    assert result.details["parsed"]["parameters"]["settings"]["Seed"] == "1234567"


def test_generator_a1111_jpeg_usercomment() -> None:
    data = jpeg_bytes(RGB, exif_ifd={0x9286: b"UNICODE\0" + A1111.encode("utf-16-be")})
    result = GeneratorMetadataExpert().analyze(make_input(data))
    assert proves(result) == {"ai_generated"}


def test_generator_comfyui() -> None:
    prompt = {
        "3": {
            "class_type": "KSampler",
            "inputs": {"seed": 42, "steps": 20, "cfg": 8.0, "sampler_name": "euler"},
        },
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        },
    }
    workflow = {
        "nodes": [
            {"type": "CheckpointLoaderSimple", "widgets_values": ["dreamshaper_8.safetensors"]}
        ]
    }
    data = png_bytes(RGB, {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)})
    result = GeneratorMetadataExpert().analyze(make_input(data))
    parsed = result.details["parsed"]
    assert proves(result) == {"ai_generated"} and len(result.evidence) == 2
    assert parsed["prompt"]["models"] == ["sd_xl_base_1.0.safetensors"]
    assert parsed["prompt"]["settings"]["seed"] == 42
    assert parsed["workflow"]["models"] == ["dreamshaper_8.safetensors"]


@pytest.mark.parametrize(
    ("text", "generator"),
    [
        (
            {
                "Software": "NovelAI",
                "Comment": json.dumps(
                    {"prompt": "1girl", "steps": 28, "scale": 5, "seed": 1, "sampler": "k_euler"}
                ),
            },
            "NovelAI",
        ),
        ({"invokeai_metadata": json.dumps({"positive_prompt": "a fox", "seed": 7})}, "InvokeAI"),
        (
            {"Dream": '"a fox in snow" -s 50 -S 1234 -W 512 -H 512 -C 7.5 -A k_lms'},
            "InvokeAI/lstein Dream",
        ),
        (
            {"Description": "a fox --ar 3:2 --v 6.0 Job ID: 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            "Midjourney",
        ),
        (
            {
                "parameters": json.dumps({"prompt": "a fox", "base_model": "juggernautXL"}),
                "fooocus_scheme": "fooocus",
            },
            "Fooocus",
        ),
    ],
)
def test_generator_other_tools(text: dict[str, str], generator: str) -> None:
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, text, itxt=True)))
    assert proves(result) == {"ai_generated"}
    assert generator in {e.value for e in result.evidence}


def test_png_text_chunks_compressed_bomb_and_corrupt() -> None:
    info = PngInfo()
    info.add_text("parameters", A1111, zip=True)  # zTXt
    info.add_itxt("Comment", "ünïcode", zip=True)  # compressed iTXt
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, "PNG", pnginfo=info)
    chunks = png_text_chunks(buf.getvalue())
    assert chunks == {"parameters": A1111, "Comment": "ünïcode"}
    # A 64 MB run of zeros compresses to ~64 kB; only MAX_CHUNK characters are kept.
    bomb = b"prompt\0\0" + zlib.compress(b"0" * 64_000_000)
    data = png_bytes(RGB)
    chunk = len(bomb).to_bytes(4, "big") + b"zTXt" + bomb + b"\0\0\0\0"
    assert len(png_text_chunks(data[:33] + chunk + data[33:])["prompt"]) == MAX_CHUNK
    corrupt = data[:33] + b"\xff\xff\xff\xfftEXtkey\0value" + data[33:]
    assert png_text_chunks(corrupt) == {"key": "value" + corrupt[33 + 17 :].decode("latin-1")}
    # Pillow itself refuses this file, so build the input by hand as a tolerant loader might.
    bombed = ImageInput(rgb=RGB, data=data[:33] + chunk + data[33:], format="PNG", mode="RGB")
    assert GeneratorMetadataExpert().analyze(bombed).error is None


def test_generator_abstains() -> None:
    none = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB)))
    assert none.score is None and "no text chunks" in (none.abstain_reason or "")
    gimp = png_bytes(RGB, {"Software": "GIMP 2.10", "Comment": "Created with GIMP"})
    other = GeneratorMetadataExpert().analyze(make_input(gimp))
    assert other.score is None and "none was written by a known generator" in (
        other.abstain_reason or ""
    )


def test_generator_hostile_chunks() -> None:
    text = {
        "prompt": "{" * 50000,
        "workflow": '{"nodes": 5}',
        "parameters": "Steps " * 10**5,
        "invokeai_metadata": "[1, 2",
        "Comment": "\x00\x01" * 1000,
        "Dream": "-s" * 9999,
    }
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, text)))
    assert result.error is None and result.score is None and not proves(result)
    assert all(len(e.summary) < 400 for e in result.evidence)
    junk = make_input(png_bytes(RGB), text_chunks={"prompt": "not json", "x": "y" * 10**6})
    assert GeneratorMetadataExpert().analyze(junk).error is None


# -- c2pa ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed_ai() -> bytes:
    pytest.importorskip("c2pa")
    actions = [
        {
            "action": "c2pa.created",
            "softwareAgent": {"name": "TestGen", "version": "2"},
            "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
        }
    ]
    return sign_c2pa(jpeg_bytes(RGB), "image/jpeg", actions, title="gen.jpg")


def test_c2pa_signed_ai_manifest_proves(signed_ai: bytes) -> None:
    result = C2paExpert().analyze(make_input(signed_ai))
    assert judged(result) >= 0.99 and proves(result) == {"ai_generated"}
    assert result.details["claim_generator"].startswith("forenscope-test")
    assert result.details["issuer"] == "Forenscope Test" and result.details["failures"] == []
    assert any(
        "'TestGen 2'" in e.summary and "trainedAlgorithmicMedia" in e.summary
        for e in result.evidence
    )


def test_c2pa_edited_without_ai_does_not_prove() -> None:
    pytest.importorskip("c2pa")
    actions = [
        {"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"},
        {"action": "c2pa.edited", "softwareAgent": {"name": "Photo Editor"}},
    ]
    result = C2paExpert().analyze(make_input(sign_c2pa(jpeg_bytes(RGB), "image/jpeg", actions)))
    assert 0.5 <= judged(result) < 0.9 and not proves(result)
    assert [a["action"] for a in result.details["actions"]] == ["c2pa.created", "c2pa.edited"]


def test_c2pa_pixels_changed_after_signing(signed_ai: bytes) -> None:
    im = Image.open(io.BytesIO(signed_ai))
    assert im.format == "JPEG"
    # Flip bytes near the end of the entropy-coded data: the data hash no longer matches.
    damaged = signed_ai[:-40] + bytes(b ^ 0x55 for b in signed_ai[-40:-2]) + signed_ai[-2:]
    result = C2paExpert().analyze(make_input(damaged))
    assert result.error is None
    assert not proves(result) and result.details["failures"]


def test_c2pa_composite_manifest_json() -> None:
    store = {
        "active_manifest": "urn:a",
        "manifests": {
            "urn:a": {
                "claim_generator_info": [{"name": "Adobe Photoshop", "version": "25.0"}],
                "title": "beach.jpg",
                "assertions": [
                    {
                        "label": "c2pa.actions.v2",
                        "data": {
                            "actions": [
                                {"action": "c2pa.opened"},
                                {
                                    "action": "c2pa.edited",
                                    "softwareAgent": "Adobe Firefly",
                                    "digitalSourceType": IPTC
                                    + "compositeWithTrainedAlgorithmicMedia",
                                },
                            ]
                        },
                    }
                ],
                "ingredients": [{"title": "IMG_1.jpg", "relationship": "parentOf"}],
                "signature_info": {"issuer": "Adobe Inc.", "time": "2024-01-01T00:00:00Z"},
            }
        },
        "validation_state": "Valid",
        "validation_status": [{"code": "signingCredential.untrusted"}],
    }
    summary = summarize(store)
    score, _, evidence = judge(summary)
    assert score >= 0.95 and {e.proves for e in evidence if e.proves} == {"tampered"}
    assert summary["issuer"] == "Adobe Inc." and summary["ingredients"][0]["title"] == "IMG_1.jpg"
    assert summarize({"manifests": "junk", "active_manifest": 3})["actions"] == []


def test_c2pa_absent_and_junk() -> None:
    pytest.importorskip("c2pa")
    none = C2paExpert().analyze(make_input(jpeg_bytes(RGB)))
    assert none.score is None and none.abstain_reason == "no C2PA manifest"
    junk = make_input(jpeg_bytes(RGB) + b"c2pa jumb" + bytes(range(256)) * 20)
    result = C2paExpert().analyze(junk)
    assert result.error is None and result.score is None


# -- watermark -------------------------------------------------------------------------------
SD1 = wm.KNOWN_MARKS[0][1]
SDXL = wm.KNOWN_MARKS[3][1]


def test_watermark_known_marks() -> None:
    assert wm.bits_to_bytes(SD1) == b"StableDiffusionV1" and SD1.size == 136
    assert SDXL.size == 48 and wm.KNOWN_MARKS[4][1].size == 46  # bin() drops 2 leading zeros


def test_watermark_decoder_matches_reference() -> None:
    maxdct = wm.load_maxdct()
    if maxdct is None:
        pytest.skip("invisible-watermark is not installed")
    bgr = np.ascontiguousarray(natural_rgb(320, 384, seed=5)[..., ::-1])
    for length in (136, 48, 46):
        ref = maxdct.EmbedMaxDct(watermarks=[], wmLen=length).decode(bgr)
        assert np.array_equal(wm.decode_bits(wm.block_votes(bgr), length), ref)


@pytest.fixture(scope="module")
def sd1_marked() -> np.ndarray:
    if wm.load_maxdct() is None:
        pytest.skip("invisible-watermark is not installed")
    return embed_watermark(natural_rgb(512, 512, seed=1), SD1, "BGR")


def test_watermark_sd1_png_proves(sd1_marked: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "sd.png"
    Image.fromarray(sd1_marked).save(path)
    result = wm.WatermarkExpert().analyze(load_image(path))
    assert judged(result) >= 0.99 and proves(result) == {"ai_generated"}
    assert "Stable Diffusion 1.x" in result.evidence[0].summary


def test_watermark_sdxl_diffusers_order() -> None:
    if wm.load_maxdct() is None:
        pytest.skip("invisible-watermark is not installed")
    marked = embed_watermark(natural_rgb(512, 512, seed=2), SDXL, "RGB")
    result = wm.WatermarkExpert().analyze(make_input(png_bytes(marked)))
    assert proves(result) == {"ai_generated"}
    best = result.details["candidates"][0]
    assert best["mark"].startswith("SDXL") and best["order"] == "RGB"


def test_watermark_no_false_positive_and_small() -> None:
    result = wm.WatermarkExpert().analyze(make_input(png_bytes(natural_rgb(512, 512, seed=1))))
    assert result.score is None and result.abstain_reason == "no known generator watermark found"
    small = wm.WatermarkExpert().analyze(make_input(png_bytes(RGB)))
    assert small.score is None and "256x256" in (small.abstain_reason or "")


def test_watermark_jpeg_robustness(sd1_marked: np.ndarray) -> None:
    # Measured on this image: 129/136 bits survive PNG, ~116 survive JPEG q=95 (still proof),
    # ~89 survive q=90 (no detection). The dwtDct mark is fragile; absence proves nothing.
    def after_jpeg(quality: int) -> ExpertResult:
        buf = io.BytesIO()
        Image.fromarray(sd1_marked).save(buf, "JPEG", quality=quality)
        return wm.WatermarkExpert().analyze(make_input(buf.getvalue()))

    assert proves(after_jpeg(95)) == {"ai_generated"}
    assert after_jpeg(90).score is None


# -- shared data: no crash, and the facts found there ------------------------------------------
@pytest.mark.data
def test_provenance_on_shared_data(shared_data: Path) -> None:
    experts = [ExifExpert(), GeneratorMetadataExpert(), C2paExpert(), wm.WatermarkExpert()]
    dalle = sorted(shared_data.glob("fake/imagen/*/dal2-1.jpg"))[:2]
    pngs = sorted(shared_data.glob("fake/imagen/*/*.png"))[:6]
    photos = sorted(shared_data.glob("real/lomiri-wallpapers-16.04/*.jpg"))[:2]
    edited = [shared_data / "tampered/hifi-ifdl/Coverage/image/14t.tif"]
    results: dict[str, dict[str, ExpertResult]] = {}
    for path in [*dalle, *pngs, *photos, *edited]:
        image = load_image(path)
        results[str(path)] = {e.spec.name: e.analyze(image) for e in experts}
        assert all(r.error is None for r in results[str(path)].values()), path
    for path in dalle:  # DALL-E 2 downloads: UserComment 'Made with OpenAI Labs'
        assert proves(results[str(path)]["exif"]) == {"ai_generated"}
    for path in [*pngs, *photos]:  # these carry no generator chunks, manifests or marks
        assert all(
            results[str(path)][n].score is None for n in ("generator_metadata", "c2pa", "watermark")
        )
    coverage = results[str(edited[0])]["exif"]  # saved by Photoshop CS4
    assert judged(coverage) >= 0.7 and any("Photoshop" in e.summary for e in coverage.evidence)
