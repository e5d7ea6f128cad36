"""The hook through which an LLM answers follow-up questions about an analysed image.

The service stores the conversation and hands the backend everything it needs; the backend (the
MLLM engine, or a test double) only turns (report, image, history, question) into an answer.
With no backend configured the chat endpoint answers 501.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..types import Report
from .schemas import ChatMessage

if TYPE_CHECKING:
    from ..mllm.config import LLMConfig

CHAT_NOT_CONFIGURED = (
    "chat needs an LLM, and none is configured on this server: start it with a chat backend "
    "(`forenscope serve --llm CONFIG`, or create_app(settings, chat_backend=...)); the analysis "
    "itself works without one"
)


@runtime_checkable
class ChatBackend(Protocol):
    """Answers one question; `image_jpeg` is the stored preview of the analysed picture.

    The report carries the expert evidence, so an answer can cite it; `history` holds the earlier
    turns of this analysis' conversation, oldest first. Called in a worker thread.
    """

    def reply(
        self, report: Report, image_jpeg: bytes, history: Sequence[ChatMessage], question: str
    ) -> str: ...


class LLMChatBackend:
    """The ChatBackend of `forenscope serve --llm CONFIG`: the MLLM engine's chat, grounded on
    the stored report (verdict, experts, evidence, regions) and the analysis' preview image.

    LLM failures raise `forenscope.mllm.errors.LLMError`; the app answers them with 502.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    def reply(
        self, report: Report, image_jpeg: bytes, history: Sequence[ChatMessage], question: str
    ) -> str:
        import asyncio

        from ..mllm.chat import achat, chat_messages, report_grounding

        turns = [{"role": m.role, "content": m.content} for m in history]
        turns.append({"role": "user", "content": question})
        image = image_jpeg or None
        messages = chat_messages(self.config, image, report_grounding(report), turns)
        return asyncio.run(achat(self.config, messages))  # a worker thread: no loop running
