"""Builders for the provenance tests: images with metadata, signed C2PA files, watermarks."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from forenscope.io.input import ImageInput

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def natural_rgb(h: int = 512, w: int = 512, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs + gradients + mild noise: textured like a photo, not flat."""
    rng = np.random.default_rng(seed)
    small = (rng.random((max(h // 32, 2), max(w // 32, 2), 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    img = img + 40 * np.sin(xx / 37.0)[..., None] + 30 * np.cos(yy / 23.0)[..., None]
    img = img + rng.normal(0, 6, img.shape)
    return np.asarray(np.clip(img, 0, 255), dtype=np.uint8)


def make_input(data: bytes, **fields: Any) -> ImageInput:
    """An ImageInput decoded from `data` (metadata fields left for the expert to parse)."""
    im = Image.open(io.BytesIO(data))
    rgb = np.asarray(im.convert("RGB"))
    return ImageInput(rgb=rgb, data=data, format=im.format or "unknown", mode=im.mode, **fields)


def png_bytes(rgb: np.ndarray, text: dict[str, str] | None = None, itxt: bool = False) -> bytes:
    info = PngInfo()
    for key, value in (text or {}).items():
        if itxt:
            info.add_itxt(key, value)
        else:
            info.add_text(key, value)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def jpeg_bytes(
    rgb: np.ndarray,
    tags: dict[int, Any] | None = None,
    exif_ifd: dict[int, Any] | None = None,
    xmp: str | None = None,
    exif_raw: bytes | None = None,
    quality: int = 90,
) -> bytes:
    """A JPEG with IFD0 `tags`, Exif-IFD `exif_ifd` and/or an XMP packet."""
    exif = Image.Exif()
    for key, value in (tags or {}).items():
        exif[key] = value
    if exif_ifd:
        sub = exif.get_ifd(0x8769)
        sub.update(exif_ifd)
    kwargs: dict[str, Any] = {"quality": quality}
    if tags or exif_ifd:
        kwargs["exif"] = exif.tobytes()
    if exif_raw is not None:
        kwargs["exif"] = exif_raw
    if xmp is not None:
        kwargs["xmp"] = xmp.encode()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def exif_with_thumbnail(thumb_size: tuple[int, int]) -> bytes:
    """Raw EXIF (little-endian TIFF) with an empty IFD0 and an IFD1 JPEG thumbnail."""
    buf = io.BytesIO()
    Image.fromarray(natural_rgb(thumb_size[1], thumb_size[0], 3)).save(buf, "JPEG")
    thumb = buf.getvalue()
    ifd0 = struct.pack("<H", 0) + struct.pack("<I", 14)  # no entries; IFD1 at offset 14
    entries = [(0x0201, 4, 1, 14 + 2 + 2 * 12 + 4), (0x0202, 4, 1, len(thumb))]
    ifd1 = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, typ, count, value) for tag, typ, count, value in entries
    )
    ifd1 += struct.pack("<I", 0)
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd0 + ifd1 + thumb


def xmp_packet(body: str) -> str:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="">{body}</rdf:Description>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def signing_chain() -> tuple[bytes, bytes]:
    """(PEM chain leaf+root, PEM PKCS#8 key): an ES256 test CA and a C2PA-capable leaf."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forenscope Test"),
            ]
        )

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not sign,
            crl_sign=not sign,
            encipher_only=False,
            decipher_only=False,
        )

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )

    def base(subject: str, issuer: x509.Name, key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )

    ca = (
        base("Forenscope Test Root", name("Forenscope Test Root"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        base("Forenscope Test Signer", ca.subject, leaf_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key


def sign_c2pa(
    source: bytes,
    mime: str,
    actions: list[dict[str, Any]],
    title: str = "test.jpg",
    remote_url: str | None = None,
) -> bytes:
    """`source` with an embedded, signed C2PA manifest holding `actions`; with `remote_url`,
    the manifest is left out of the file (a cloud manifest) and only its URL is written, in
    the XMP `dcterms:provenance` property, as the SDK does."""
    import c2pa

    chain, key = signing_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    manifest = {
        "claim_generator_info": [{"name": "forenscope-test", "version": "1.0"}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        if remote_url is not None:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        builder.sign(signer, mime, io.BytesIO(source), out)
    return out.getvalue()


# -- Stable Diffusion front-ends ---------------------------------------------------------------
# A1111 `parameters` texts as create_infotext() writes them (v1.7.0 key order): the prompt, the
# negative prompt, then one settings line.
_A1111_HEAD = (
    "a castle on a hill, (masterpiece:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
)
A1111_RUNS = {
    "txt2img": _A1111_HEAD + "Version: v1.7.0",
    "hires": _A1111_HEAD + "Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent, "
    "Version: v1.7.0",
    "adetailer": _A1111_HEAD + "ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, "
    "ADetailer dilate erode: 4, ADetailer mask blur: 4, ADetailer denoising strength: 0.4, "
    "ADetailer inpaint only masked: True, ADetailer inpaint padding: 32, "
    "ADetailer version: 23.11.1, Version: v1.7.0",
    "img2img": _A1111_HEAD + "Denoising strength: 0.6, Version: v1.7.0",
    "inpaint": _A1111_HEAD + "Denoising strength: 0.75, Mask blur: 4, Version: v1.7.0",
    "inpaint_masked": _A1111_HEAD + "Denoising strength: 0.5, Mask blur: 8, Inpaint area: Only "
    "masked, Masked area padding: 32, Version: v1.7.0",
    # Early releases wrote "Mask blur" for every img2img run, and no "Version".
    "img2img_old": _A1111_HEAD.replace("Model: v1-5-pruned-emaonly, ", "")
    + "Denoising strength: 0.75, Mask blur: 4",
}

# A ComfyUI node: (id, class_type, {input: (source id, output slot)}, {widget: value}).
ComfyNode = tuple[int, str, dict[str, tuple[int, int]], dict[str, Any]]
_LINK_TYPES = {
    "model": "MODEL",
    "clip": "CLIP",
    "vae": "VAE",
    "positive": "CONDITIONING",
    "negative": "CONDITIONING",
    "conditioning": "CONDITIONING",
    "control_net": "CONTROL_NET",
    "latent_image": "LATENT",
    "samples": "LATENT",
    "mask": "MASK",
}
_BASE: list[ComfyNode] = [
    (4, "CheckpointLoaderSimple", {}, {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
    (6, "CLIPTextEncode", {"clip": (4, 1)}, {"text": "a castle on a hill"}),
    (7, "CLIPTextEncode", {"clip": (4, 1)}, {"text": "blurry, lowres"}),
    (8, "VAEDecode", {"samples": (3, 0), "vae": (4, 2)}, {}),
    (9, "SaveImage", {"images": (8, 0)}, {"filename_prefix": "ComfyUI"}),
]


def _ksampler(latent: tuple[int, int], denoise: float, positive: int = 6) -> ComfyNode:
    links = {"model": (4, 0), "positive": (positive, 0), "negative": (7, 0)}
    widgets = {"seed": 156680208700286, "steps": 20, "cfg": 8.0, "sampler_name": "euler"}
    return (
        3,
        "KSampler",
        {**links, "latent_image": latent},
        {**widgets, "scheduler": "normal", "denoise": denoise},
    )


def _load(node_id: int, name: str) -> ComfyNode:
    return (node_id, "LoadImage", {}, {"image": name, "upload": "image"})


# The graphs of ComfyUI's own examples (default txt2img, img2img, inpaint) and two txt2img
# graphs that load an image or mask a latent without editing an existing picture.
COMFY_RUNS: dict[str, list[ComfyNode]] = {
    "txt2img": [
        *_BASE,
        (5, "EmptyLatentImage", {}, {"width": 512, "height": 512, "batch_size": 1}),
        _ksampler((5, 0), 1.0),
    ],
    "img2img": [
        *_BASE,
        _load(10, "example.png"),
        (12, "VAEEncode", {"pixels": (10, 0), "vae": (4, 2)}, {}),
        _ksampler((12, 0), 0.87),
    ],
    "inpaint": [
        *_BASE,
        _load(20, "yosemite_inpaint_example.png"),
        (
            26,
            "VAEEncodeForInpaint",
            {"pixels": (20, 0), "vae": (4, 2), "mask": (20, 1)},
            {"grow_mask_by": 6},
        ),
        _ksampler((26, 0), 1.0),
    ],
    # A pose taken from a photo, then a hires-fix pass (latent upscale, denoise 0.5).
    "controlnet_txt2img": [
        *[n for n in _BASE if n[0] != 8],
        (5, "EmptyLatentImage", {}, {"width": 512, "height": 512, "batch_size": 1}),
        _load(11, "pose_photo.png"),
        (12, "ControlNetLoader", {}, {"control_net_name": "control_v11p_sd15_openpose.pth"}),
        (
            13,
            "ControlNetApply",
            {"conditioning": (6, 0), "control_net": (12, 0), "image": (11, 0)},
            {"strength": 1.0},
        ),
        _ksampler((5, 0), 1.0, positive=13),
        (
            14,
            "LatentUpscaleBy",
            {"samples": (3, 0)},
            {"upscale_method": "nearest-exact", "scale_by": 1.5},
        ),
        (
            15,
            "KSampler",
            {"model": (4, 0), "positive": (13, 0), "negative": (7, 0), "latent_image": (14, 0)},
            {
                "seed": 2,
                "steps": 14,
                "cfg": 8.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 0.5,
            },
        ),
        (8, "VAEDecode", {"samples": (15, 0), "vae": (4, 2)}, {}),
    ],
    "masked_second_pass": [
        *[n for n in _BASE if n[0] != 8],
        (5, "EmptyLatentImage", {}, {"width": 512, "height": 512, "batch_size": 1}),
        _ksampler((5, 0), 1.0),
        (31, "SolidMask", {}, {"value": 1.0, "width": 512, "height": 512}),
        (30, "SetLatentNoiseMask", {"samples": (3, 0), "mask": (31, 0)}, {}),
        (
            32,
            "KSampler",
            {"model": (4, 0), "positive": (6, 0), "negative": (7, 0), "latent_image": (30, 0)},
            {
                "seed": 1,
                "steps": 20,
                "cfg": 8.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 0.5,
            },
        ),
        (8, "VAEDecode", {"samples": (32, 0), "vae": (4, 2)}, {}),
    ],
}


def comfy_chunks(nodes: list[ComfyNode]) -> dict[str, str]:
    """The `prompt` (API format) and `workflow` (UI format) text chunks ComfyUI's SaveImage
    writes, both describing `nodes`."""
    prompt = {
        str(nid): {
            "inputs": {**widgets, **{k: [str(src), slot] for k, (src, slot) in links.items()}},
            "class_type": cls,
            "_meta": {"title": cls},
        }
        for nid, cls, links, widgets in nodes
    }
    ui_links: list[list[Any]] = []
    ui_nodes: list[dict[str, Any]] = []
    for order, (nid, cls, links, widgets) in enumerate(nodes):
        inputs = []
        for slot, (name, (src, out)) in enumerate(links.items()):
            kind = _LINK_TYPES.get(name, "IMAGE")
            ui_links.append([len(ui_links) + 1, src, out, nid, slot, kind])
            inputs.append({"name": name, "type": kind, "link": len(ui_links)})
        values: list[Any] = []
        for key, value in widgets.items():
            values.append(value)
            if key in ("seed", "noise_seed"):
                values.append("randomize")  # the frontend's control_after_generate widget
        ui_nodes.append(
            {
                "id": nid,
                "type": cls,
                "pos": [100 * order, 100],
                "size": [315, 262],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": inputs,
                "outputs": [],
                "properties": {"Node name for S&R": cls},
                "widgets_values": values,
            }
        )
    workflow = {
        "last_node_id": max(n[0] for n in nodes),
        "last_link_id": len(ui_links),
        "nodes": ui_nodes,
        "links": ui_links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
        "version": 0.4,
    }
    return {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)}


def embed_watermark(rgb: np.ndarray, bits: np.ndarray, order: str = "BGR") -> np.ndarray:
    """Embed `bits` with the reference invisible-watermark dwtDct encoder, as the generators'
    code does: SD scripts/sgm/FLUX pass BGR, diffusers' SDXL watermarker passes RGB."""
    from forenscope.experts.watermark import load_maxdct

    maxdct = load_maxdct()
    assert maxdct is not None, "invisible-watermark is not installed"
    encoder = maxdct.EmbedMaxDct([int(b) for b in bits], wmLen=len(bits))
    src = np.ascontiguousarray(rgb[..., ::-1] if order == "BGR" else rgb)
    out = encoder.encode(src.copy())
    out = np.clip(np.round(out), 0, 255).astype(np.uint8) if out.dtype != np.uint8 else out
    return np.ascontiguousarray(out[..., ::-1] if order == "BGR" else out)
