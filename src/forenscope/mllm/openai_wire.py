"""Pure functions of `forenscope serve-openai`: read an OpenAI chat request, answer from a Report.

Forenscope acts as a forensic "vision model". What it answers depends on what was asked:
- a JSON response format (or our own stage-2 prompt): a JSON object, shaped as our stage-2
  answer when the schema asks for one, else the whole report;
- a yes/no question (or any request for logprobs): "Yes"/"No", with token log-probs taken from
  the verdict's P(tampered or AI-generated), so the stage-1 scorer can score Forenscope itself;
- anything else: the verdict and the evidence-grounded explanation.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ImageTooLargeError
from ..types import Report
from .types import Location, MLLMScope, Stage2Answer

Mode = Literal["json_report", "json_stage2", "yes_no", "text"]
P_FLOOR = 1e-6  # log(0) is not a number; a certain verdict still leaves this much doubt
_YES_NO = re.compile(r"\byes\b[^.?!]{0,40}\bno\b|\byes/no\b", re.IGNORECASE)
_DATA_URL = re.compile(r"^data:([\w.+/-]*)(;[\w=.+-]+)*;base64,", re.IGNORECASE)
UNDECIDED = (
    "I cannot tell: none of Forenscope's experts could judge this image, so there is no "
    "evidence either way."
)


class WireError(Exception):
    """A request the server refuses, with the OpenAI error fields to send back."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        err = {"message": str(self), "type": kind, "param": self.param, "code": self.code}
        return {"error": err}


@dataclass(frozen=True)
class Query:
    text: str  # the text parts of the last user message with an image
    image: bytes


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a base64 data URL; size checked before decoding. Remote URLs are refused:
    the server never fetches (no SSRF surface)."""
    match = _DATA_URL.match(url)
    if match is None:
        raise WireError(400, "image_url must be a base64 data URL (data:image/...;base64,...)",
                        "invalid_image_url", "messages")  # fmt: skip
    payload = url[match.end() :]
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise ImageTooLargeError(f"image is over the limit of {max_bytes:,} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(400, "image_url is not valid base64", "invalid_image_url") from None


def find_query(messages: Any, max_bytes: int) -> Query:
    """The last user message that carries an image: its text and the image bytes."""
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "messages must be a non-empty list", "invalid_messages", "messages")
    for msg in reversed(messages):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        parts = _parts(msg.get("content"))
        images = [p for p in parts if p.get("type") == "image_url"]
        if not images:
            continue
        ref = images[-1].get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str):
            raise WireError(400, "image_url.url must be a string", "invalid_image_url")
        text = " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
        return Query(text=text.strip(), image=decode_data_url(url, max_bytes))
    raise WireError(400, "no image in the user messages: send one as an image_url content part",
                    "missing_image", "messages")  # fmt: skip


def answer_mode(body: dict[str, Any], text: str) -> Mode:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        schema = (fmt or {}).get("json_schema", {}).get("schema") or {}
        props = schema.get("properties") if isinstance(schema, dict) else None
        return (
            "json_stage2"
            if isinstance(props, dict) and "forged_content" in props
            else "json_report"
        )
    if kind == "json_object":
        return "json_stage2" if "forged_content" in text else "json_report"
    if "forged_content" in text:  # our stage-2 prompt on an endpoint without schemas
        return "json_stage2"
    if body.get("logprobs") or _YES_NO.search(text):
        return "yes_no"
    return "text"


def p_fake(report: Report) -> float:
    """P(tampered or AI-generated) = 1 - P(real), kept off 0 and 1."""
    p = 1.0 - float(report.verdict.probabilities.get("real", 0.0))
    return min(1.0 - P_FLOOR, max(P_FLOOR, p))


def stage2_answer(report: Report) -> Stage2Answer:
    """The report in the shape of our stage-2 answer (where, what, traces, method, scope)."""
    label, att = report.verdict.leaning, report.attribution
    region = report.regions[0] if report.regions else None
    if region is not None:
        x, y, w, h = region.bbox_relative
        box = [x, y, min(1.0, x + w), min(1.0, y + h)]
        where = Location(relative=region.description, absolute=region.relative_position, box=box)
    else:
        where = Location(absolute="the whole frame" if label == "ai_generated" else "")
    content = {"real": "nothing found: the experts judge the image real",
               "ai_generated": "the whole image appears generated",
               "tampered": "a locally edited region"}[label]  # fmt: skip
    if not report.verdict.decided:
        content = f"inconclusive (needs review); the evidence leans to: {content}"
    scope: MLLMScope = "local" if region else "global"
    if att.scope == "global" or att.scope == "local":
        scope = att.scope
    return Stage2Answer(
        location=where, forged_content=content,
        visible_traces=[e.summary for e in report.key_evidence[:5]],
        method=att.method, scope=scope,
        reasoning=report.explanation.split("\n\n")[0],
    )  # fmt: skip


def yes_no_logprobs(p: float, answer: str, top: int) -> dict[str, Any]:
    """OpenAI `logprobs` for a one-token answer; the two candidates' probabilities sum to 1."""
    cands = sorted([("Yes", math.log(p)), ("No", math.log(1.0 - p))], key=lambda t: -t[1])
    chosen = dict(cands)[answer]
    alts = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in cands[:top]]
    entry = {"token": answer, "logprob": chosen, "bytes": list(answer.encode()),
             "top_logprobs": alts}  # fmt: skip
    return {"content": [entry], "refusal": None}


def choice(report: Report, mode: Mode, body: dict[str, Any]) -> dict[str, Any]:
    """One `choices[]` entry answering in `mode`."""
    logprobs = None
    if mode == "json_report":
        content = report.model_dump_json()
    elif mode == "json_stage2":
        content = stage2_answer(report).model_dump_json()
    elif mode == "yes_no" and report.verdict.decided_by == "none":
        content = UNDECIDED  # a refusal, so a scorer counts it as one instead of a guess
    elif mode == "yes_no":
        p = p_fake(report)
        content = "Yes" if p >= 0.5 else "No"
        if body.get("logprobs"):
            top = int(body.get("top_logprobs") or 0)
            logprobs = yes_no_logprobs(p, content, top)
    else:
        v = report.verdict
        head = f"Verdict: {v.label} (probability {v.probability:.2f}, decided by {v.decided_by})."
        content = f"{head}\n\n{report.explanation}".strip()
    message = {"role": "assistant", "content": content, "refusal": None}
    return {"index": 0, "message": message, "finish_reason": "stop", "logprobs": logprobs}


def check_request(body: Any, model_id: str) -> dict[str, Any]:
    """The parts of a request we refuse before any work."""
    if not isinstance(body, dict):
        raise WireError(400, "the body must be a JSON object", "invalid_body")
    if body.get("stream"):
        raise WireError(400, "stream=true is not supported", "unsupported_parameter", "stream")
    if body.get("model") != model_id:
        raise WireError(404, f"the model {body.get('model')!r} does not exist; use {model_id!r}",
                        "model_not_found", "model")  # fmt: skip
    n = 1 if body.get("n") is None else body["n"]
    if not isinstance(n, int) or not 1 <= n <= 16:
        raise WireError(400, "n must be an integer in 1..16", "invalid_value", "n")
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
        raise WireError(400, "top_logprobs must be in 0..20", "invalid_value", "top_logprobs")
    return body


def usage(text: str, choices: list[dict[str, Any]]) -> dict[str, int]:
    """Rough token counts (4 characters a token, 85 per image as OpenAI's low detail)."""
    prompt = len(text) // 4 + 85
    completion = sum(len(c["message"]["content"]) // 4 + 1 for c in choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip
