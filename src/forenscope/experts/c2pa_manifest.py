"""C2PA (Content Credentials) manifests, read with the official c2pa-python SDK.

A manifest is a signed statement by the software that made or edited the file. What it proves
depends on its validation, so the result does too:

- its actions carry an IPTC digital source type: `trainedAlgorithmicMedia` means "made by a
  generative model" and proves AI generation; `compositeWithTrainedAlgorithmicMedia` (or an
  `algorithmicallyEnhanced` action described as inpainting / generative fill) means a generative
  edit of part of the image, our `tampered` label; `digitalCapture` on `c2pa.created` is a
  camera's claim of a capture, which supports "real" without proving it;
- `assertion.dataHash.mismatch` (or its BMFF / box / collection variants) means the file's
  bytes changed after signing: strong evidence of an edit, and every claim in the manifest then
  describes other bytes;
- `claimSignature.mismatch` means the manifest itself was altered after signing;
- `signingCredential.untrusted` only says the signer is on no trust list. None is configured
  (offline), so every signer is untrusted here: that is not evidence of tampering.

Nothing is fetched: a file that points to a remote (cloud) manifest is reported as such, with
the URL, and the expert abstains.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec, Label
from .base import Expert
from .exif import clip, read_xmp, xmp_values
from .registry import register_expert

MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "HEIF": "image/heif",
    "HEIC": "image/heic",
    "AVIF": "image/avif",
    "DNG": "image/dng",
    # ISO-BMFF video (video/provenance.py reads the clip's own file): c2pa-rs reads both
    "MP4": "video/mp4",
    "MOV": "video/quicktime",
}
# Offline and private: never fetch a remote manifest or an OCSP response.
SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}

AI = "trainedAlgorithmicMedia"
AI_COMPOSITE = "compositeWithTrainedAlgorithmicMedia"
ENHANCED = "algorithmicallyEnhanced"
CAPTURES = ("digitalCapture", "computationalCapture")  # a camera (phone HDR/multi-frame too)
# `algorithmicallyEnhanced` alone is a minor correction (denoise, sharpen); described as one
# of these, it is a generative local edit.
GENERATIVE_EDIT = re.compile(
    r"inpaint|outpaint|generative\s*(?:fill|erase|expand|edit|remove)|magic\s*(?:eraser|editor)"
    r"|object\s*(?:removal|eraser)",
    re.I,
)

UNTRUSTED = "signingCredential.untrusted"
DATA_CHANGED = "the image data changed after the manifest was signed"
# Validation failure code -> (evidence kind, score, confidence, what it means). Codes not listed
# (an expired certificate, a bad time stamp, ...) are reported without a score of their own.
VALIDATION: dict[str, tuple[str, float, float, str]] = {
    **{
        f"assertion.{h}.mismatch": (
            "c2pa.data_hash_mismatch",
            0.93,
            0.75,
            f"{DATA_CHANGED} (the hash covers every byte outside the manifest, so a "
            "metadata-only re-save breaks it too)",
        )
        for h in ("dataHash", "bmffHash", "boxesHash", "collectionHash")
    },
    "claimSignature.mismatch": (
        "c2pa.claim_signature_mismatch",
        0.7,
        0.5,
        "the claim no longer matches its signature: the manifest itself was altered after "
        "signing, so what it says cannot be relied on",
    ),
    "assertion.hashedURI.mismatch": (
        "c2pa.assertion_mismatch",
        0.7,
        0.5,
        "an assertion no longer matches the hash the signed claim holds for it: the manifest "
        "was altered after signing",
    ),
}
REMOTE_ERROR = re.compile(r"^Remote(?:Manifest)?\b|must fetch remote manifest", re.I)
URL = re.compile(r"https?://[^\s\"'<>]{1,2000}")


def read_manifest_store(data: bytes, fmt: str) -> dict[str, Any] | None:
    """The manifest store as the SDK's JSON (a dict), or None when the file carries none."""
    import c2pa

    if b"c2pa" not in data:  # every embedded store has a JUMBF box labelled "c2pa"
        return None
    context = c2pa.Context(c2pa.Settings.from_dict(SETTINGS))
    reader = c2pa.Reader.try_create(MIME.get(fmt.upper()), io.BytesIO(data), None, context)
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
    return store if isinstance(store, dict) else None


def safe_url(url: str) -> str:
    """A URL fit to quote in a summary: entities decoded, then quotes, brackets, spaces and
    non-ASCII percent-encoded (it comes from the file, so it is the file author's text)."""
    return clip(quote(html.unescape(url.strip()), safe=":/?#[]@!$&()*+,;=%-._~"), 300)


def remote_manifest_url(xmp: str) -> str | None:
    """The http(s) URL of a remote manifest named in XMP `dcterms:provenance`, if any."""
    for value in xmp_values(xmp, "dcterms:provenance", 5):
        if value.startswith(("http://", "https://")):
            return value
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _name(agent: Any) -> str:
    if isinstance(agent, dict):
        return clip(f"{agent.get('name', '')} {agent.get('version', '')}".strip(), 120)
    return clip(agent, 120) if agent else ""


def _generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        return _name(info[0])
    return clip(manifest.get("claim_generator", ""), 120)


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for assertion in (manifest.get("assertions") or [])[:100]:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith(
            "c2pa.actions"
        ):
            data = _as_dict(assertion.get("data"))
            out.extend(a for a in (data.get("actions") or [])[:100] if isinstance(a, dict))
    return out


def _dst(value: Any) -> str:
    return str(value or "").rsplit("/", 1)[-1][:80]


def _description(action: dict[str, Any]) -> str:
    """An action's free-text description (v2 field, or v1's parameters.description/name)."""
    params = _as_dict(action.get("parameters"))
    parts = [action.get("description"), params.get("description"), params.get("name")]
    return clip(" ".join(p for p in parts if isinstance(p, str)), 160)


def _codes(store: dict[str, Any], active: str) -> list[str]:
    """Failure codes of the active manifest, from the legacy list and `validation_results`."""
    results = _as_dict(_as_dict(store.get("validation_results")).get("activeManifest"))
    entries = [*(store.get("validation_status") or [])[:50], *(results.get("failure") or [])[:50]]
    codes: list[str] = []
    for entry in entries:
        entry = _as_dict(entry)
        url, code = str(entry.get("url", "")), str(entry.get("code", ""))[:80]
        # An ingredient's own failures (its url names another manifest) are not this file's.
        if code and (not url or not active or active in url) and code not in codes:
            codes.append(code)
    return codes


def summarize(store: dict[str, Any]) -> dict[str, Any]:
    """A flat, JSON-safe summary of the active manifest (pure function, testable)."""
    manifests = _as_dict(store.get("manifests"))
    label = str(store.get("active_manifest") or "")
    active = _as_dict(manifests.get(label))
    actions = [
        {
            "action": clip(a.get("action", ""), 60),
            "software": _name(a.get("softwareAgent")),
            "source_type": _dst(a.get("digitalSourceType")),
            "description": _description(a),
        }
        for a in _actions(active)
    ]
    ingredients = []
    for ing in (active.get("ingredients") or [])[:50]:
        if not isinstance(ing, dict):
            continue
        parent = _as_dict(manifests.get(str(ing.get("active_manifest") or ing.get("manifest"))))
        types = [_dst(a.get("digitalSourceType")) for a in _actions(parent)]
        ingredients.append(
            {
                "title": clip(ing.get("title", ""), 120),
                "relationship": clip(ing.get("relationship", ""), 40),
                "source_types": [t for t in types if t],
            }
        )
    sig = _as_dict(active.get("signature_info"))
    codes = _codes(store, label)
    return {
        "claim_generator": _generator(active),
        "title": clip(active.get("title", ""), 120),
        "actions": actions,
        "ingredients": ingredients,
        "issuer": clip(sig.get("issuer", ""), 120),
        "signer": clip(sig.get("common_name", ""), 120),
        "signed_at": clip(sig.get("time", ""), 40),
        "validation_state": clip(store.get("validation_state", ""), 20),
        # Without a configured trust list every signer is "untrusted": not a failure here.
        "failures": [c for c in codes if c != UNTRUSTED],
        "untrusted_signer": UNTRUSTED in codes,
    }


@dataclass
class Judgement:
    """What a manifest summary supports: score None when nothing in it can be scored."""

    score: float | None = None
    confidence: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)

    def add(self, score: float, confidence: float) -> None:
        if self.score is None or score > self.score:
            self.score, self.confidence = score, confidence


def _validation(summary: dict[str, Any], out: Judgement) -> None:
    seen: set[str] = set()
    for code in summary["failures"]:
        kind, score, conf, meaning = VALIDATION.get(
            code, ("c2pa.validation_failure", -1.0, 0.0, "a validation check failed")
        )
        if kind in seen and kind != "c2pa.validation_failure":
            continue
        seen.add(kind)
        out.evidence.append(
            Evidence(kind=kind, value=code, summary=f"C2PA validation '{code}': {meaning}")
        )
        if score >= 0:
            out.add(score, conf)
        if kind == "c2pa.data_hash_mismatch":
            out.flags["tamper_after_signing"] = True
    if summary["untrusted_signer"]:
        who = summary["signer"] or summary["issuer"] or "unnamed"
        out.evidence.append(
            Evidence(
                kind="c2pa.untrusted_signer",
                value=who,
                summary=f"the signer '{who}' is on no trust list (none is configured: the "
                "analysis is offline), so who signed is unverified; this is not evidence of "
                "tampering",
            )
        )


def _action(act: dict[str, str], valid: bool, out: Judgement) -> None:
    label: Label | None = None
    kind = "c2pa.action"
    source, name = act["source_type"], act["action"]
    if source == AI:
        label, s, c, what = "ai_generated", 0.99, 0.97, "made by a generative model"
        if valid:
            out.flags.setdefault("scope", "global")
    elif source == AI_COMPOSITE or (
        source == ENHANCED and GENERATIVE_EDIT.search(act.get("description", ""))
    ):
        label, s, c = "tampered", 0.97, 0.95
        what = "part of an existing image was generated (generative inpainting / fill)"
        if valid:
            out.flags.update(method="diffusion", scope="local", edit="inpaint")
    elif name == "c2pa.created" and source in CAPTURES and valid:
        kind, s, c = "c2pa.digital_capture", 0.1, 0.4
        what = "the signer declares a camera capture (supports 'real'; a claim, not a proof)"
        out.flags["digital_capture"] = True
    elif name in ("c2pa.created", "c2pa.opened") and source in (*CAPTURES, ""):
        s, c, what = 0.1, 0.4, "a capture or an opened file, no AI declared"
    else:
        s, c, what = 0.7, 0.6, "edited (an edit, not necessarily a content change)"
    agent = f" by '{act['software']}'" if act["software"] else ""
    dst = f", digitalSourceType '{source}'" if source else ""
    text = act.get("description", "")
    note = f" ('{text}')" if text else ""
    out.evidence.append(
        Evidence(
            kind=kind,
            value=name,
            proves=label if valid else None,
            summary=f"C2PA action '{name}'{agent}{dst}{note}: {what}",
        )
    )
    out.add(s, c if valid else c * 0.6)


def judge(summary: dict[str, Any]) -> Judgement:
    """Score, confidence, evidence and flags (details for the verdict) from a summary."""
    valid = not summary["failures"] and summary["validation_state"] != "Invalid"
    out = Judgement(flags={"tamper_after_signing": False, "digital_capture": False})
    who = f"signed by '{summary['issuer'] or 'unknown issuer'}'" + (
        "" if valid else f", but validation failed ({', '.join(summary['failures'][:3])})"
    )
    gen = summary["claim_generator"] or "an unnamed claim generator"
    out.evidence.append(
        Evidence(
            kind="c2pa.manifest",
            value=summary["validation_state"] or None,
            summary=f"C2PA manifest from {gen}, title '{summary['title']}', {who}",
        )
    )
    _validation(summary, out)
    for act in summary["actions"]:
        _action(act, valid, out)
    for ing in summary["ingredients"]:
        if AI in ing["source_types"]:
            # A generated parent means the whole picture derives from it; a generated
            # component pasted into another picture is a local (tampering) edit.
            ing_label: Label = "ai_generated" if ing["relationship"] == "parentOf" else "tampered"
            out.evidence.append(
                Evidence(
                    kind="c2pa.ingredient",
                    value=ing["title"],
                    proves=ing_label if valid else None,
                    summary=f"C2PA ingredient '{ing['title']}' ({ing['relationship']}) was itself "
                    "made by a generative model",
                )
            )
            out.add(0.95, 0.9 if valid else 0.5)
    return out


def _remote(url: str) -> Evidence:
    shown = safe_url(url)
    return Evidence(
        kind="c2pa.remote_manifest",
        value=shown,
        summary=f"the file points to a remote C2PA manifest at '{shown}'; it was not fetched "
        "because the analysis is offline, so its claims and validity are unknown",
    )


@register_expert
class C2paExpert(Expert):
    spec = ExpertSpec(
        name="c2pa",
        version="1.1",
        kind="provenance",
        targets="both",
        description="C2PA Content Credentials: claim generator, actions, software agents, "
        "IPTC digital source types (trainedAlgorithmicMedia proves AI generation, a generative "
        "composite proves a local edit, digitalCapture supports a real photo), signer and "
        "validation status (a data-hash mismatch means the bytes changed after signing; a claim "
        "signature mismatch means the manifest was altered; an untrusted signer is not "
        "tampering). Offline: no trust list, no remote manifests (reported, not fetched), no OCSP.",
        inputs=["data", "xmp"],
        licence="Apache-2.0 (code); c2pa-python (MIT OR Apache-2.0)",
        requires=["c2pa"],
        extra="c2pa",
        reference="https://c2pa.org/specifications/",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        import c2pa

        remote = remote_manifest_url(read_xmp(image))
        try:
            store = read_manifest_store(image.data, image.format)
        except c2pa.C2paError as exc:
            message = str(exc)
            if not REMOTE_ERROR.search(message):
                # A damaged or unsupported container is not a verdict on the picture.
                return self.abstain(f"C2PA data could not be read: {clip(message, 160)}")
            # The SDK refused to fetch the manifest it was pointed to (fetching is off).
            found = URL.search(message)
            remote, store = remote or (found.group(0) if found else "an unstated URL"), None
        if store is None:
            if remote is None:
                return self.abstain("no C2PA manifest")
            reference = _remote(remote)
            return self.abstain(
                "the file references a remote C2PA manifest, not fetched because the analysis "
                "is offline",
                evidence=[reference],
                details={"remote_manifest_url": reference.value},
            )
        summary = summarize(store)
        judgement = judge(summary)
        evidence = judgement.evidence + ([_remote(remote)] if remote else [])
        details = {**summary, **judgement.flags}
        if judgement.score is None:
            return self.abstain(
                "C2PA manifest present but it declares no actions and no validation failure",
                evidence=evidence,
                details=details,
            )
        return self.result(
            judgement.score, evidence=evidence, confidence=judgement.confidence, details=details
        )
