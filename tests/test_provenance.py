"""Provenance experts: EXIF/XMP, generator text chunks, C2PA manifests, invisible watermarks."""

from __future__ import annotations

import csv
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from forenscope.experts import watermark as wm
from forenscope.experts.base import Expert
from forenscope.experts.c2pa_manifest import C2paExpert, judge, safe_url, summarize
from forenscope.experts.exif import ExifExpert
from forenscope.experts.generator_metadata import (
    MAX_CHUNK,
    GeneratorMetadataExpert,
    parse_a1111,
    png_text_chunks,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from forenscope.types import Evidence, ExpertResult
from provenance_fixtures import (
    A1111_RUNS,
    COMFY_RUNS,
    IPTC,
    comfy_chunks,
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
    ("cls", "name", "version", "targets", "requires"),
    [
        (ExifExpert, "exif", "1.1", "both", []),
        (GeneratorMetadataExpert, "generator_metadata", "1.1", "ai_generated", []),
        (C2paExpert, "c2pa", "1.1", "both", ["c2pa"]),
        (wm.WatermarkExpert, "watermark", "1.0", "ai_generated", ["pywt", "cv2"]),
    ],
)
def test_specs(
    cls: type[Expert], name: str, version: str, targets: str, requires: list[str]
) -> None:
    spec = cls.spec
    assert (spec.name, spec.kind, spec.version, spec.targets) == (
        name,
        "provenance",
        version,
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
    assert (result.evidence[0].kind, result.evidence[0].value) == ("exif.editor", "Adobe Photoshop")
    assert result.details["editor"] == "Adobe Photoshop"


def editor_of(data: bytes) -> str | None:
    """The editor the EXIF expert names, checking that evidence and details agree."""
    result = ExifExpert().analyze(make_input(data))
    assert result.error is None
    named = [e.value for e in result.evidence if e.kind == "exif.editor"]
    assert result.details.get("editor") == (named[0] if named else None)
    return result.details.get("editor")


@pytest.mark.parametrize(
    ("tags", "editor"),
    [
        ({0x0131: "Adobe Photoshop Lightroom Classic 12.0 (Windows)"}, "Adobe Lightroom"),
        ({0x0131: "Adobe Photoshop Camera Raw 15.0 (Macintosh)"}, "Adobe Camera Raw"),
        ({0x0131: "GIMP 2.10.34"}, "GIMP"),
        ({0x0131: "Paint.NET v3.36"}, "Paint.NET"),
        ({0x0131: "Picsart"}, "PicsArt"),
        ({0x000B: "Affinity Photo 2.3.0"}, "Affinity Photo"),  # ProcessingSoftware
        # Camera firmware and phone OS versions are not editors.
        ({0x0131: "Ver.1.00"}, None),
        ({0x0131: "Firmware Version 1.2.0"}, None),
        ({0x0131: "HDR+ 1.0.345647733z"}, None),
        ({0x0131: "16.1.1", 0x010F: "Apple", 0x0110: "iPhone 14 Pro"}, None),
        ({0x0131: "Google Camera 8.7", 0x010F: "Google", 0x0110: "Pixel 7"}, None),
        # An editor's name in a camera field or a caption is not the software that saved it.
        ({0x0110: "GIMP", 0x010E: "retouched in Photoshop later"}, None),
    ],
)
def test_exif_editor_names(tags: dict[int, str], editor: str | None) -> None:
    assert editor_of(jpeg_bytes(RGB, tags=tags)) == editor


def test_exif_editor_from_xmp_creator_tool() -> None:
    xmp = xmp_packet("<xmp:CreatorTool>Pixelmator Pro 3.3.2</xmp:CreatorTool>")
    assert editor_of(jpeg_bytes(RGB, xmp=xmp)) == "Pixelmator"


@pytest.mark.parametrize(
    ("tags", "exif_ifd"),
    [
        ({0x0131: "Adobe Firefly"}, None),
        (None, {0x9286: b"ASCII\0\0\0Made with OpenAI Labs"}),  # DALL-E 2 UserComment
    ],
)
def test_exif_generator_proves_ai(
    tags: dict[int, Any] | None, exif_ifd: dict[int, Any] | None
) -> None:
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
    assert result.evidence[0].summary.startswith(
        "Stable Diffusion (A1111/Forge) generated the whole image from a text prompt (txt2img) "
        "(text chunk 'parameters' = 'a castle"
    )
    assert result.details["parsed"]["parameters"]["settings"]["Seed"] == "1234567"
    assert {k: result.details[k] for k in ("method", "scope", "edit")} == {
        "method": "diffusion",
        "scope": "global",
        "edit": "txt2img",
    }


def generator_flags(result: ExpertResult) -> tuple[set[str], str, str, str]:
    assert judged(result) >= 0.99 and result.confidence >= 0.9
    d = result.details
    return proves(result), d["edit"], d["scope"], d["method"]


TXT2IMG = ({"ai_generated"}, "txt2img", "global", "diffusion")
IMG2IMG = ({"tampered"}, "img2img", "global", "diffusion")
INPAINT = ({"tampered"}, "inpaint", "local", "diffusion")


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("txt2img", TXT2IMG),
        ("hires", TXT2IMG),  # hires fix writes a denoising strength, but it is txt2img
        ("adetailer", TXT2IMG),  # ADetailer inpaints its own generated face
        ("img2img", IMG2IMG),
        ("inpaint", INPAINT),
        ("inpaint_masked", INPAINT),
        ("img2img_old", IMG2IMG),  # unversioned "Mask blur" alone: only img2img is certain
    ],
)
def test_generator_a1111_modes(run: str, expected: tuple[set[str], str, str, str]) -> None:
    data = png_bytes(RGB, {"parameters": A1111_RUNS[run]})  # a tEXt chunk, as A1111 saves
    assert png_text_chunks(data) == {"parameters": A1111_RUNS[run]}
    result = GeneratorMetadataExpert().analyze(make_input(data))
    assert generator_flags(result) == expected


def test_generator_a1111_inpaint_says_what_it_did() -> None:
    result = GeneratorMetadataExpert().analyze(
        make_input(png_bytes(RGB, {"parameters": A1111_RUNS["inpaint"]}))
    )
    assert result.evidence[0].summary.startswith(
        "Stable Diffusion (A1111/Forge) inpainted part of an existing image: mask blur 4, "
        "denoising strength 0.75 (text chunk 'parameters'"
    )
    img2img = GeneratorMetadataExpert().analyze(
        make_input(png_bytes(RGB, {"parameters": A1111_RUNS["img2img"]}))
    )
    assert "redrew an existing image (img2img): denoising strength 0.6" in (
        img2img.evidence[0].summary
    )


def test_generator_a1111_jpeg_inpaint() -> None:
    # A1111 saves JPEG/WebP parameters into EXIF UserComment (UNICODE, big-endian UTF-16).
    comment = b"UNICODE\0" + A1111_RUNS["inpaint_masked"].encode("utf-16-be")
    result = GeneratorMetadataExpert().analyze(
        make_input(jpeg_bytes(RGB, exif_ifd={0x9286: comment}))
    )
    assert generator_flags(result) == INPAINT


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("txt2img", TXT2IMG),
        ("img2img", IMG2IMG),
        ("inpaint", INPAINT),
        ("controlnet_txt2img", TXT2IMG),  # a photo used as a pose guide is not edited
        ("masked_second_pass", TXT2IMG),  # a noise mask over its own generated latent
    ],
)
def test_generator_comfyui_modes(run: str, expected: tuple[set[str], str, str, str]) -> None:
    chunks = comfy_chunks(COMFY_RUNS[run])
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, chunks)))
    assert generator_flags(result) == expected
    parsed = result.details["parsed"]
    assert parsed["prompt"]["edit"] == parsed["workflow"]["edit"] == expected[1]
    assert parsed["prompt"]["models"] == ["v1-5-pruned-emaonly.safetensors"]


def test_generator_comfyui_words_and_workflow_alone() -> None:
    inpaint = comfy_chunks(COMFY_RUNS["inpaint"])
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, inpaint)))
    assert result.evidence[0].summary.startswith(
        "ComfyUI inpainted part of an existing image: an image from LoadImage, through "
        "VAEEncodeForInpaint, denoise 1"
    )
    img2img = comfy_chunks(COMFY_RUNS["img2img"])
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, img2img)))
    assert "redrew an existing image (img2img)" in result.evidence[0].summary
    assert "denoise 0.87" in result.evidence[0].summary
    # The UI-format workflow alone (read from its widgets and links) tells the same story.
    alone = {"workflow": inpaint["workflow"]}
    result = GeneratorMetadataExpert().analyze(make_input(png_bytes(RGB, alone)))
    assert generator_flags(result) == INPAINT


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("sdxl_inpaint", INPAINT),
        ("flux_outpaint", INPAINT),
        ("img2img", IMG2IMG),
        ("txt2img", TXT2IMG),
    ],
)
def test_generator_invokeai_generation_mode(
    mode: str, expected: tuple[set[str], str, str, str]
) -> None:
    meta = json.dumps({"positive_prompt": "a fox", "generation_mode": mode, "seed": 7})
    result = GeneratorMetadataExpert().analyze(
        make_input(png_bytes(RGB, {"invokeai_metadata": meta}))
    )
    assert generator_flags(result) == expected


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
    # Their records do not say whether an input image was used: whole-image, edit unknown.
    assert (result.details["edit"], result.details["scope"]) == ("unknown", "global")


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
CAPTURE: list[dict[str, Any]] = [
    {"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}
]


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


@pytest.fixture(scope="module")
def signed_capture() -> bytes:
    pytest.importorskip("c2pa")
    return sign_c2pa(jpeg_bytes(RGB), "image/jpeg", CAPTURE, title="IMG_0001.jpg")


def kinds(result: ExpertResult) -> dict[str, Evidence]:
    return {e.kind: e for e in result.evidence}


def test_c2pa_signed_ai_manifest_proves(signed_ai: bytes) -> None:
    result = C2paExpert().analyze(make_input(signed_ai))
    assert judged(result) >= 0.99 and proves(result) == {"ai_generated"}
    assert result.details["claim_generator"].startswith("forenscope-test")
    assert result.details["issuer"] == "Forenscope Test" and result.details["failures"] == []
    assert result.details["tamper_after_signing"] is False
    assert result.details["digital_capture"] is False
    assert any(
        "'TestGen 2'" in e.summary and "trainedAlgorithmicMedia" in e.summary
        for e in result.evidence
    )


def test_c2pa_digital_capture_supports_real(signed_capture: bytes) -> None:
    result = C2paExpert().analyze(make_input(signed_capture))
    assert judged(result) <= 0.15 and not proves(result)
    assert result.details["digital_capture"] is True
    assert result.details["tamper_after_signing"] is False
    found = kinds(result)
    assert found["c2pa.digital_capture"].value == "c2pa.created"
    # Our test signer is on no trust list: said, and not held against the image.
    assert result.details["untrusted_signer"] is True
    assert "not evidence of tampering" in found["c2pa.untrusted_signer"].summary
    assert found["c2pa.untrusted_signer"].value == "Forenscope Test Signer"


def test_c2pa_edited_without_ai_does_not_prove() -> None:
    pytest.importorskip("c2pa")
    edit: dict[str, Any] = {"action": "c2pa.edited", "softwareAgent": {"name": "Photo Editor"}}
    actions = [*CAPTURE, edit]
    result = C2paExpert().analyze(make_input(sign_c2pa(jpeg_bytes(RGB), "image/jpeg", actions)))
    assert 0.5 <= judged(result) < 0.9 and not proves(result)
    assert [a["action"] for a in result.details["actions"]] == ["c2pa.created", "c2pa.edited"]


def _flip_tail(data: bytes, start: int, stop: int) -> bytes:
    return data[:start] + bytes(b ^ 0x55 for b in data[start:stop]) + data[stop:]


def test_c2pa_pixels_changed_after_signing(signed_capture: bytes) -> None:
    assert Image.open(io.BytesIO(signed_capture)).format == "JPEG"
    # Flip bytes near the end of the entropy-coded data: the data hash no longer matches.
    damaged = _flip_tail(signed_capture, len(signed_capture) - 40, len(signed_capture) - 2)
    result = C2paExpert().analyze(make_input(damaged))
    assert judged(result) >= 0.9 and not proves(result)
    assert "assertion.dataHash.mismatch" in result.details["failures"]
    assert result.details["tamper_after_signing"] is True
    # The camera claim described other bytes: it no longer supports "real".
    assert result.details["digital_capture"] is False
    mismatch = kinds(result)["c2pa.data_hash_mismatch"]
    assert "the image data changed after the manifest was signed" in mismatch.summary
    assert "c2pa.digital_capture" not in kinds(result)


def test_c2pa_png_pixels_changed_after_signing() -> None:
    pytest.importorskip("c2pa")
    signed = sign_c2pa(png_bytes(RGB), "image/png", CAPTURE, title="shot.png")
    assert C2paExpert().analyze(make_input(signed)).details["tamper_after_signing"] is False
    idat = signed.index(b"IDAT") + 4
    damaged = _flip_tail(signed, idat + 10, idat + 40)
    # The PNG CRC now fails too, so build the input by hand as a tolerant loader might.
    result = C2paExpert().analyze(ImageInput(rgb=RGB, data=damaged, format="PNG", mode="RGB"))
    assert judged(result) >= 0.9 and result.details["tamper_after_signing"] is True
    assert "c2pa.data_hash_mismatch" in kinds(result)


def test_c2pa_manifest_altered_after_signing(signed_capture: bytes) -> None:
    at = signed_capture.index(b"forenscope-test")  # the claim generator's name, in the claim
    altered = signed_capture[:at] + b"F" + signed_capture[at + 1 :]
    result = C2paExpert().analyze(make_input(altered))
    assert 0.5 <= judged(result) < 0.9 and not proves(result)
    found = kinds(result)
    assert found["c2pa.claim_signature_mismatch"].value == "claimSignature.mismatch"
    assert "manifest itself was altered" in found["c2pa.claim_signature_mismatch"].summary
    assert "c2pa.data_hash_mismatch" not in found
    assert result.details["tamper_after_signing"] is False
    assert result.details["digital_capture"] is False


def _store(actions: list[dict[str, Any]], codes: list[str]) -> dict[str, Any]:
    return {
        "active_manifest": "urn:a",
        "manifests": {
            "urn:a": {
                "claim_generator_info": [{"name": "Adobe Photoshop", "version": "25.0"}],
                "title": "beach.jpg",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
                "ingredients": [{"title": "IMG_1.jpg", "relationship": "parentOf"}],
                "signature_info": {"issuer": "Adobe Inc.", "time": "2024-01-01T00:00:00Z"},
            }
        },
        "validation_state": "Invalid" if set(codes) - {"signingCredential.untrusted"} else "Valid",
        "validation_status": [
            {"code": c, "url": "self#jumbf=/c2pa/urn:a/c2pa.signature"} for c in codes
        ],
    }


GENERATIVE_FILL = {
    "action": "c2pa.edited",
    "softwareAgent": "Adobe Firefly",
    "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia",
}


def test_c2pa_composite_manifest_json() -> None:
    store = _store([{"action": "c2pa.opened"}, GENERATIVE_FILL], ["signingCredential.untrusted"])
    summary = summarize(store)
    judgement = judge(summary)
    assert judgement.score is not None and judgement.score >= 0.95
    assert {e.proves for e in judgement.evidence if e.proves} == {"tampered"}
    assert judgement.flags == {
        "tamper_after_signing": False,
        "digital_capture": False,
        "method": "diffusion",
        "scope": "local",
        "edit": "inpaint",
    }
    assert summary["issuer"] == "Adobe Inc." and summary["ingredients"][0]["title"] == "IMG_1.jpg"
    assert summary["failures"] == [] and summary["untrusted_signer"] is True
    assert summarize({"manifests": "junk", "active_manifest": 3})["actions"] == []


@pytest.mark.parametrize(
    ("description", "label"),
    [("Generative Fill", "tampered"), ("Used Magic Eraser", "tampered"), ("Denoise", None)],
)
def test_c2pa_algorithmically_enhanced(description: str, label: str | None) -> None:
    action = {
        "action": "c2pa.edited",
        "digitalSourceType": IPTC + "algorithmicallyEnhanced",
        "description": description,
    }
    judgement = judge(summarize(_store([action], [])))
    assert {e.proves for e in judgement.evidence if e.proves} == ({label} if label else set())
    assert judgement.flags.get("edit") == ("inpaint" if label else None)


def test_c2pa_validation_codes_json() -> None:
    # A valid manifest whose only failure is a BMFF hash (video, HEIF): bytes changed too.
    bmff = judge(summarize(_store([{"action": "c2pa.opened"}], ["assertion.bmffHash.mismatch"])))
    assert bmff.score is not None and bmff.score >= 0.9 and bmff.flags["tamper_after_signing"]
    # A generative-fill claim in a manifest altered after signing proves nothing.
    altered = judge(summarize(_store([GENERATIVE_FILL], ["claimSignature.mismatch"])))
    assert not any(e.proves for e in altered.evidence) and "edit" not in altered.flags
    # An expired certificate is reported, but is no evidence about the picture by itself.
    expired = judge(summarize(_store([], ["signingCredential.expired"])))
    assert expired.score is None
    assert [e.kind for e in expired.evidence][1:] == ["c2pa.validation_failure"]
    # Only an untrusted signer and no actions: nothing to score (neutral), the signer is named.
    untrusted = judge(summarize(_store([], ["signingCredential.untrusted"])))
    assert untrusted.score is None and "c2pa.untrusted_signer" in {
        e.kind for e in untrusted.evidence
    }
    # An ingredient's failures (its url names another manifest) are not this file's.
    store = _store([{"action": "c2pa.opened"}], [])
    store["validation_status"] = [
        {"code": "assertion.dataHash.mismatch", "url": "self#jumbf=/c2pa/urn:b/c2pa.hash.data"}
    ]
    assert summarize(store)["failures"] == []


@pytest.mark.parametrize(
    "url",
    [
        # The SDK sees "c2pa" in the file and refuses to fetch the manifest it points to.
        "https://cloud.example.com/manifests/abc.c2pa?x=1&y=<2>",
        # No "c2pa" in the bytes at all: only the XMP reference tells.
        "https://cai-manifests.example.com/manifests/urn-uuid-1234",
    ],
)
def test_c2pa_remote_manifest_is_reported_not_fetched(url: str) -> None:
    pytest.importorskip("c2pa")
    data = sign_c2pa(jpeg_bytes(RGB), "image/jpeg", CAPTURE, remote_url=url)
    assert b"dcterms:provenance" in data
    result = C2paExpert().analyze(make_input(data))
    assert result.error is None and result.score is None
    assert result.abstain_reason != "no C2PA manifest"
    assert "offline" in (result.abstain_reason or "")
    ref = kinds(result)["c2pa.remote_manifest"]
    assert isinstance(ref.value, str) and ref.value.startswith(url.split("?")[0])
    assert "not fetched" in ref.summary and "offline" in ref.summary
    assert result.details["remote_manifest_url"] == ref.value
    assert not {"<", ">", '"', " "} & set(ref.value)


def test_c2pa_remote_reference_in_xmp_is_escaped() -> None:
    pytest.importorskip("c2pa")
    xmp = xmp_packet(
        "<dcterms:provenance>https://evil.example/m?a=1&amp;b=&lt;script&gt;alert('x')"
        "&lt;/script&gt;</dcterms:provenance>"
    )
    result = C2paExpert().analyze(make_input(jpeg_bytes(RGB, xmp=xmp)))
    ref = kinds(result)["c2pa.remote_manifest"]
    assert result.score is None and isinstance(ref.value, str)
    assert ref.value.startswith("https://evil.example/m?a=1&b=%3Cscript%3E")
    assert not {"<", ">", "'"} & set(ref.value)
    # A `self#jumbf` reference is the embedded manifest, not a remote one.
    local = xmp_packet('<rdf:Description dcterms:provenance="self#jumbf=/c2pa/urn:x"/>')
    result = C2paExpert().analyze(make_input(jpeg_bytes(RGB, xmp=local)))
    assert result.abstain_reason == "no C2PA manifest"
    assert safe_url('https://a.example/x y"z') == "https://a.example/x%20y%22z"


def test_c2pa_absent_and_junk() -> None:
    pytest.importorskip("c2pa")
    none = C2paExpert().analyze(make_input(jpeg_bytes(RGB)))
    assert none.score is None and none.abstain_reason == "no C2PA manifest"
    assert none.evidence == []
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


@pytest.mark.data
def test_exif_editor_on_shared_data(shared_data: Path) -> None:
    # Camera JPEGs with full EXIF, chosen to carry no editing software: firmware strings such
    # as "Ver.1.00", "E995v1.6" or "I9505XXUGNG8" must not read as an editor.
    cameras = sorted((shared_data / "real/metadata-extractor-images").glob("*.jpg"))
    assert len(cameras) >= 40
    for path in cameras:
        result = ExifExpert().analyze(load_image(path))
        assert result.error is None, path
        assert "editor" not in result.details and "exif.editor" not in kinds(result), path
    # CASIA forgeries were made in Photoshop, and their EXIF says so ("Adobe Photoshop CS2 ...").
    with open(shared_data / "manifest.csv", newline="") as f:
        casia = [r["path"] for r in csv.DictReader(f) if "casia" in r["source"]]
    assert len(casia) >= 3
    for rel in casia:
        result = ExifExpert().analyze(load_image(shared_data / rel))
        assert result.details.get("editor") == "Adobe Photoshop", rel
        assert kinds(result)["exif.editor"].value == "Adobe Photoshop"
        assert judged(result) >= 0.7 and not proves(result)
