"""Builders for the provenance tests: images with metadata, signed C2PA files, watermarks."""

from __future__ import annotations

import datetime as dt
import io
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
    return np.clip(img, 0, 255).astype(np.uint8)


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
    source: bytes, mime: str, actions: list[dict[str, Any]], title: str = "test.jpg"
) -> bytes:
    """`source` with an embedded, signed C2PA manifest holding `actions`."""
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
        builder.sign(signer, mime, io.BytesIO(source), out)
    return out.getvalue()


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
