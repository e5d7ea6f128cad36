"""Multi-turn chat about one image, grounded on its evidence; history kept in a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import AsyncLLMClient
from .config import LLMConfig
from .image import encode_image
from .prompts import FivePart
from .request import answer_texts, build_request

CHAT_PROMPT_VERSION = "chat-v1"
_CHAT_SYSTEM = FivePart(
    profile="You are an AI visual assistant trained to examine images like a forensic analyst.",
    goal="Answer follow-up questions about one image and whether it is tampered or generated.",
    constraint=(
        "Ground every claim in what is visible or in the listed evidence, and say which. Say "
        "when you cannot tell. Never identify people."
    ),
    style="Short, plain English.",
).render()


@dataclass
class ChatSession:
    path: Path
    image: Path
    evidence: list[str] = field(default_factory=list)
    turns: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, image: Path, evidence: list[str]) -> ChatSession:
        """Resume the history at `path` (same image), or start one."""
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("image") == str(image):
                return cls(path, image, data.get("evidence", []) or evidence, data.get("turns", []))
        return cls(path, image, evidence)

    def messages(self, config: LLMConfig) -> list[dict[str, Any]]:
        grounding = "Here is the image."
        if self.evidence:
            items = "\n".join(f"[E{i}] {t}" for i, t in enumerate(self.evidence, 1))
            grounding += " Forensic tools reported (they can be wrong):\n" + items
        img = encode_image(self.image, config.image_policy)
        first = {
            "role": "user",
            "content": [{"type": "text", "text": grounding}, img.content_part()],
        }
        ack = {"role": "assistant", "content": "Understood. What would you like to know?"}
        return [{"role": "system", "content": _CHAT_SYSTEM}, first, ack, *self.turns]

    async def ask(self, config: LLMConfig, question: str) -> str:
        self.turns.append({"role": "user", "content": question})
        body = build_request(config.model, self.messages(config), temperature=0.2, max_tokens=600)
        async with AsyncLLMClient(config) as client:  # no key_parts: chat is never cached
            resp = await client.complete(body)
        answer = (answer_texts(resp.data) or [None])[0] or ""
        self.turns.append({"role": "assistant", "content": answer})
        self.save()
        return answer

    def save(self) -> None:
        data = {
            "version": CHAT_PROMPT_VERSION,
            "image": str(self.image),
            "evidence": self.evidence,
            "turns": self.turns,
        }
        self.path.write_text(json.dumps(data, indent=1), encoding="utf-8")
