"""Chat-completion request bodies (OpenAI wire format) as pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .image import EncodedImage
from .prompts import PromptTemplate

Message = dict[str, Any]


def user_turn(text: str, image: EncodedImage) -> Message:
    return {"role": "user", "content": [{"type": "text", "text": text}, image.content_part()]}


def build_messages(
    template: PromptTemplate,
    image: EncodedImage,
    examples: Sequence[tuple[EncodedImage, str]] = (),
    example_question: str | None = None,
) -> list[Message]:
    """System prompt, then k-shot turns (user image + question / assistant answer), then the
    query image with the template's user text."""
    messages: list[Message] = []
    if template.system:
        messages.append({"role": "system", "content": template.system})
    for ex_image, answer in examples:
        messages.append(user_turn(example_question or template.user, ex_image))
        messages.append({"role": "assistant", "content": answer})
    messages.append(user_turn(template.user, image))
    return messages


def build_request(
    model: str,
    messages: list[Message],
    *,
    temperature: float = 0.0,
    max_tokens: int = 16,
    n: int = 1,
    top_logprobs: int | None = None,
    response_format: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A /v1/chat/completions body. `top_logprobs` set => `logprobs: true` is requested too."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    if n != 1:
        body["n"] = n
    if top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = top_logprobs
    if response_format is not None:
        body["response_format"] = response_format
    if seed is not None:
        body["seed"] = seed
    if extra:
        body.update(extra)
    return body


def answer_texts(response: dict[str, Any]) -> list[str | None]:
    """The assistant text of every choice (None where the content is missing)."""
    out: list[str | None] = []
    for choice in response.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if content is None and isinstance(message, dict):  # OpenAI structured-output refusal
            content = message.get("refusal")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(content if isinstance(content, str) else None)
    return out
