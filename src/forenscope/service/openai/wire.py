"""Pure functions of `forenscope serve-openai`: read an OpenAI chat request, answer from a Report.

Forenscope acts as a forensic "vision model". What it answers depends on what was asked:
- a JSON response format (or our own stage-2 prompt): our stage-2 answer when the schema is
  ours, an object in the client's own schema for any other `json_schema` (`schema_answer`), the
  whole report for `json_object`;
- a yes/no question (or any request for logprobs): "Yes"/"No", with token log-probs taken from
  the verdict's P(tampered or AI-generated), so the stage-1 scorer can score Forenscope itself;
- anything else: the part of the report the question asks for (`openai_followup`): where, how
  it was made, why, how sure, or the verdict with its explanation.

One image is judged per request: the image of the latest user message that has one. A later
text-only user message is a follow-up question about it. Images in earlier messages (k-shot
examples, earlier turns) are counted in `usage` and named in `forenscope_notes`, never judged;
several images in one message are refused, as Forenscope cannot tell which one is meant.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import ImageTooLargeError
from ...types import Report
from ...types.llm import Location, MLLMScope, Stage2Answer
from . import tokens
from .followup import text_answer
from .schema_answer import schema_answer

Mode = Literal["json_report", "json_stage2", "json_schema", "yes_no", "text"]
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


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True)
class Conversation:
    """What a request asks about: the image judged, the question, and what was left aside."""

    image: bytes  # the image of the latest user message that has one
    image_text: str  # the text parts of that message
    question: str  # the latest user text: a follow-up when it came after the image
    follow_up: bool
    earlier_images: int  # images in earlier messages: counted, not judged
    prompt_tokens: int

    @property
    def notes(self) -> list[str]:
        if not self.earlier_images:
            return []
        return [
            f"judged one image, the one in the latest user message that has an image; "
            f"{self.earlier_images} image(s) in earlier messages (in-context examples or "
            "earlier turns) were counted in usage but not analysed"
        ]


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


def _check_message(i: int, msg: Any) -> None:
    where = f"messages[{i}]"
    if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
        raise WireError(400, f"{where} must be an object with a role ({', '.join(sorted(_ROLES))})",
                        "invalid_messages", where)  # fmt: skip
    content = msg.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise WireError(400, f"{where}.content must be a string or a list of parts",
                        "invalid_messages", f"{where}.content")  # fmt: skip
    for j, part in enumerate(content if isinstance(content, list) else []):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise WireError(400, f"{where}.content[{j}] must be an object with a type",
                            "invalid_messages", f"{where}.content[{j}]")  # fmt: skip


def _image_urls(parts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(url, detail) of each image part; a part without a string URL is refused."""
    out = []
    for p in parts:
        if p.get("type") != "image_url":
            continue
        ref = p.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str):
            raise WireError(400, "image_url.url must be a string", "invalid_image_url")
        detail = ref.get("detail", "auto") if isinstance(ref, dict) else "auto"
        out.append((url, str(detail)))
    return out


def read_conversation(messages: Any, max_bytes: int) -> Conversation:
    """The judged image, the question and the token count of a chat request."""
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "messages must be a non-empty list", "invalid_messages", "messages")
    for i, msg in enumerate(messages):
        _check_message(i, msg)
    images: list[tuple[int, bytes]] = []  # (message index, bytes)
    prompt = tokens.REPLY_PRIMING
    for i, msg in enumerate(messages):
        urls = _image_urls(_parts(msg.get("content")))
        if len(urls) > 1 and msg.get("role") == "user":
            raise WireError(400, f"messages[{i}] carries {len(urls)} images: Forenscope judges "
                            "one image per request; send one image per message (the latest "
                            "one is judged)", "too_many_images", f"messages[{i}]")  # fmt: skip
        cost = []
        for url, detail in urls:
            data = decode_data_url(url, max_bytes)
            cost.append(tokens.image_tokens(*tokens.image_size(data), detail))
            if msg.get("role") == "user":
                images.append((i, data))
        prompt += tokens.message_tokens(msg, cost)
    if not images:
        raise WireError(400, "no image in the user messages: send one as an image_url content "
                        "part", "missing_image", "messages")  # fmt: skip
    at, image = images[-1]

    def text_of(msg: dict[str, Any]) -> str:
        parts = _parts(msg.get("content"))
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text").strip()

    later = [m for m in messages[at + 1 :] if m.get("role") == "user" and text_of(m)]
    image_text = text_of(messages[at])
    question = text_of(later[-1]) if later else image_text
    return Conversation(image, image_text, question, bool(later), len(images) - 1, prompt)


def answer_mode(body: dict[str, Any], text: str) -> Mode:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        schema = (fmt or {}).get("json_schema", {}).get("schema") or {}
        props = schema.get("properties") if isinstance(schema, dict) else None
        return (
            "json_stage2"
            if isinstance(props, dict) and "forged_content" in props
            else "json_schema"
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


def client_schema(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
    return schema if isinstance(schema, dict) else {}


def answer_notes(report: Report, mode: Mode, body: dict[str, Any], conv: Conversation) -> list[str]:
    """`forenscope_notes`: the conversation's, and what a client schema asked that no fact of
    the report answers (filled with the type's empty value)."""
    notes = list(conv.notes)
    if mode == "json_schema":
        missing = schema_answer(report, client_schema(body))[1]
        if missing:
            notes.append(f"not answered by the report (empty values): {', '.join(missing)}")
    return notes


def answer_text(report: Report, mode: Mode, conv: Conversation, body: dict[str, Any]) -> str:
    """The full answer in `mode`, before any `max_tokens` cut."""
    if mode == "json_report":
        return report.model_dump_json()
    if mode == "json_stage2":
        return stage2_answer(report).model_dump_json()
    if mode == "json_schema":
        return json.dumps(schema_answer(report, client_schema(body))[0])
    if mode == "yes_no" and report.verdict.decided_by == "none":
        return UNDECIDED  # a refusal, so a scorer counts it as one instead of a guess
    if mode == "yes_no":
        return "Yes" if p_fake(report) >= 0.5 else "No"
    text = text_answer(report, conv.question, conv.follow_up)
    notes = conv.notes
    return text + "".join(f"\n\nNote: {n}." for n in notes)


def choice(report: Report, mode: Mode, body: dict[str, Any], conv: Conversation) -> dict[str, Any]:
    """One `choices[]` entry answering in `mode`, cut at `max_tokens` (finish_reason 'length')."""
    content, cut = tokens.truncate(answer_text(report, mode, conv, body), max_tokens(body))
    logprobs = None
    if mode == "yes_no" and body.get("logprobs") and content in ("Yes", "No"):
        top = int(body.get("top_logprobs") or 0)
        logprobs = yes_no_logprobs(p_fake(report), content, top)
    message = {"role": "assistant", "content": content, "refusal": None}
    finish = "length" if cut else "stop"
    return {"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}


def max_tokens(body: dict[str, Any]) -> int | None:
    """`max_completion_tokens` (the newer name) or `max_tokens`, whichever is set."""
    value = body.get("max_completion_tokens")
    value = body.get("max_tokens") if value is None else value
    return int(value) if value is not None else None


def _check_int(body: dict[str, Any], key: str, low: int, high: int) -> None:
    value = body.get(key)
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
    ):
        raise WireError(400, f"{key} must be an integer in {low}..{high}", "invalid_value", key)


def check_request(body: Any, model_id: str) -> dict[str, Any]:
    """The parts of a request we refuse before any work, as OpenAI would refuse them."""
    if not isinstance(body, dict):
        raise WireError(400, "the body must be a JSON object", "invalid_body")
    if not isinstance(body.get("model"), str):
        raise WireError(400, "model is required (a string)", "missing_required_parameter", "model")
    if body["model"] != model_id:
        raise WireError(404, f"the model {body.get('model')!r} does not exist; use {model_id!r}",
                        "model_not_found", "model")  # fmt: skip
    if "messages" not in body:
        raise WireError(400, "messages is required", "missing_required_parameter", "messages")
    for key in ("stream", "logprobs"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise WireError(400, f"{key} must be a boolean", "invalid_type", key)
    _check_int(body, "n", 1, 16)
    _check_int(body, "top_logprobs", 0, 20)
    _check_int(body, "max_tokens", 1, 1_000_000)
    _check_int(body, "max_completion_tokens", 1, 1_000_000)
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise WireError(400, f"{key} must be a number", "invalid_type", key)
    for key in ("response_format", "stream_options"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise WireError(400, f"{key} must be an object", "invalid_type", key)
    return body


def completion(
    report: Report, body: dict[str, Any], conv: Conversation, model_id: str, fingerprint: str,
    completion_id: str, created: int,
) -> dict[str, Any]:  # fmt: skip
    """The whole chat.completion object (a stream sends the same answer in chunks)."""
    mode = answer_mode(body, conv.question)
    one = choice(report, mode, body, conv)
    choices = [{**one, "index": i} for i in range(int(body.get("n") or 1))]
    completion_tokens = sum(tokens.count(c["message"]["content"]) for c in choices)
    return {
        "id": completion_id, "object": "chat.completion", "created": created,
        "model": model_id, "system_fingerprint": fingerprint, "choices": choices,
        "usage": {"prompt_tokens": conv.prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": conv.prompt_tokens + completion_tokens},
        "forenscope_notes": answer_notes(report, mode, body, conv),
        "forenscope_report": report.model_dump(mode="json"),
    }  # fmt: skip
