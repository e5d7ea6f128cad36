"""C2PA (Content Credentials) manifests, read with the official c2pa-python SDK.

A manifest is a signed statement by the software that made or edited the file. Its actions
carry an IPTC digital source type: `trainedAlgorithmicMedia` means "made by a generative model"
and proves AI generation; `compositeWithTrainedAlgorithmicMedia` means a generative edit of
part of the image (e.g. generative fill), which is our `tampered` label. No trust list is
configured and nothing is fetched, so signatures are checked for integrity, not for trust.
"""

from __future__ import annotations

import io
import json
from typing import Any

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec, Label
from .base import Expert
from .exif import clip
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
}
# Offline and private: never fetch a remote manifest or an OCSP response.
SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}

AI = "trainedAlgorithmicMedia"
AI_COMPOSITE = "compositeWithTrainedAlgorithmicMedia"


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


def _failures(store: dict[str, Any]) -> list[str]:
    statuses = store.get("validation_status")
    codes = [_as_dict(s).get("code", "") for s in (statuses or [])[:50]]
    # Without a configured trust list every signer is "untrusted": that is not an error here.
    return [str(c)[:80] for c in codes if c and c != "signingCredential.untrusted"]


def summarize(store: dict[str, Any]) -> dict[str, Any]:
    """A flat, JSON-safe summary of the active manifest (pure function, testable)."""
    manifests = _as_dict(store.get("manifests"))
    active = _as_dict(manifests.get(str(store.get("active_manifest"))))
    actions = [
        {
            "action": clip(a.get("action", ""), 60),
            "software": _name(a.get("softwareAgent")),
            "source_type": _dst(a.get("digitalSourceType")),
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
    return {
        "claim_generator": _generator(active),
        "title": clip(active.get("title", ""), 120),
        "actions": actions,
        "ingredients": ingredients,
        "issuer": clip(sig.get("issuer", ""), 120),
        "signer": clip(sig.get("common_name", ""), 120),
        "signed_at": clip(sig.get("time", ""), 40),
        "validation_state": clip(store.get("validation_state", ""), 20),
        "failures": _failures(store),
    }


def judge(summary: dict[str, Any]) -> tuple[float, float, list[Evidence]]:
    """(score, confidence, evidence) from a manifest summary."""
    valid = not summary["failures"] and summary["validation_state"] != "Invalid"
    who = f"signed by '{summary['issuer'] or 'unknown issuer'}'" + (
        "" if valid else f", but validation failed ({', '.join(summary['failures'][:3])})"
    )
    gen = summary["claim_generator"] or "an unnamed claim generator"
    evidence = [
        Evidence(
            kind="c2pa.manifest",
            value=summary["validation_state"] or None,
            summary=f"C2PA manifest from {gen}, title '{summary['title']}', {who}",
        )
    ]
    score, confidence = -1.0, 0.0
    for act in summary["actions"]:
        label: Label | None = None
        if act["source_type"] == AI:
            label, s, c, what = "ai_generated", 0.99, 0.97, "made by a generative model"
        elif act["source_type"] == AI_COMPOSITE:
            label, s, c, what = "tampered", 0.97, 0.95, "partly generated (generative edit)"
        elif act["action"] in ("c2pa.created", "c2pa.opened") and act["source_type"] in (
            "digitalCapture",
            "",
        ):
            s, c, what = 0.1, 0.4, "a capture or an opened file, no AI declared"
        else:
            s, c, what = 0.7, 0.6, "edited (an edit, not necessarily a content change)"
        agent = f" by '{act['software']}'" if act["software"] else ""
        dst = f", digitalSourceType '{act['source_type']}'" if act["source_type"] else ""
        evidence.append(
            Evidence(
                kind="c2pa.action",
                value=act["action"],
                proves=label if valid else None,
                summary=f"C2PA action '{act['action']}'{agent}{dst}: {what}",
            )
        )
        if s > score:
            score, confidence = s, c if valid else c * 0.6
    for ing in summary["ingredients"]:
        if AI in ing["source_types"]:
            # A generated parent means the whole picture derives from it; a generated
            # component pasted into another picture is a local (tampering) edit.
            ing_label: Label = "ai_generated" if ing["relationship"] == "parentOf" else "tampered"
            evidence.append(
                Evidence(
                    kind="c2pa.ingredient",
                    value=ing["title"],
                    proves=ing_label if valid else None,
                    summary=f"C2PA ingredient '{ing['title']}' ({ing['relationship']}) was itself "
                    "made by a generative model",
                )
            )
            score, confidence = max(score, 0.95), max(confidence, 0.9 if valid else 0.5)
    return score, confidence, evidence


@register_expert
class C2paExpert(Expert):
    spec = ExpertSpec(
        name="c2pa",
        version="1.0",
        kind="provenance",
        targets="both",
        description="C2PA Content Credentials: claim generator, actions, software agents, "
        "IPTC digital source types (trainedAlgorithmicMedia proves AI generation), signer and "
        "validation status. Offline: no trust list, no remote manifests, no OCSP.",
        inputs=["data"],
        licence="Apache-2.0 (code); c2pa-python (MIT OR Apache-2.0)",
        requires=["c2pa"],
        extra="c2pa",
        reference="https://c2pa.org/specifications/",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        import c2pa

        try:
            store = read_manifest_store(image.data, image.format)
        except c2pa.C2paError as exc:
            # A damaged or unsupported container is not a verdict on the picture.
            return self.abstain(f"C2PA data could not be read: {clip(str(exc), 160)}")
        if store is None:
            return self.abstain("no C2PA manifest")
        summary = summarize(store)
        score, confidence, evidence = judge(summary)
        if score < 0:
            return self.abstain(
                "C2PA manifest present but it declares no actions",
                evidence=evidence,
                details=summary,
            )
        return self.result(score, evidence=evidence, confidence=confidence, details=summary)
