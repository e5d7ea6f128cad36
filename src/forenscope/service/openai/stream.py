"""Server-sent events for `stream: true`, in OpenAI's chat.completion.chunk format.

Per choice: a first chunk with the role, one chunk per token piece of the content (with its
log-prob entry when log-probs were asked for), a last chunk with `finish_reason`. With
`stream_options.include_usage`, every chunk carries `"usage": null` and a final chunk with no
choices carries the usage. The stream ends with `data: [DONE]`. The analysis is done before the
first byte is sent, so an error is still an ordinary JSON error response.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from . import tokens


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def sse_events(done: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """The events of a stream that sends the finished completion `done`."""
    head = {k: done[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        body: dict[str, Any] = {**head, "choices": choices}
        if include_usage:
            body["usage"] = None
        return _event({**body, **extra})

    extra: dict[str, Any] = {
        k: done[k] for k in ("forenscope_notes", "forenscope_report") if k in done
    }
    for n, c in enumerate(done["choices"]):
        i = c["index"]
        first = {"role": "assistant", "content": "", "refusal": None}
        yield chunk([{"index": i, "delta": first, "logprobs": None, "finish_reason": None}])
        entries = (c.get("logprobs") or {}).get("content") or []
        for j, piece in enumerate(tokens.pieces(c["message"]["content"])):
            lp = {"content": [entries[j]], "refusal": None} if j < len(entries) else None
            delta = {"content": piece}
            yield chunk([{"index": i, "delta": delta, "logprobs": lp, "finish_reason": None}])
        last = {"index": i, "delta": {}, "logprobs": None, "finish_reason": c["finish_reason"]}
        # Forenscope's own fields ride on the last chunk, which clients that ignore extra
        # fields read like any other.
        final = not include_usage and n == len(done["choices"]) - 1
        yield chunk([last], **(extra if final else {}))
    if include_usage:
        yield _event({**head, "choices": [], "usage": done["usage"], **extra})
    yield "data: [DONE]\n\n"
