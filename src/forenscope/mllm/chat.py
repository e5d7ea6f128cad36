"""Multi-turn chat about one image, grounded on its full report; history kept in a JSON file.

`report_grounding` turns a Report (verdict, experts, key evidence, regions, LLM stages) into
numbered lines the model can cite; `chat_messages` and `achat` are shared by the CLI session
below and by the HTTP service's chat backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import Report
from .client import AsyncLLMClient
from .config import LLMConfig
from .image import ImageLike, encode_image
from .prompts import FivePart
from .request import answer_texts, build_request

CHAT_PROMPT_VERSION = "chat-v2"
MAX_GROUNDING_EVIDENCE = 10
_CHAT_SYSTEM = FivePart(
    profile="You are an AI visual assistant trained to examine images like a forensic analyst.",
    goal="Answer follow-up questions about one image and whether it is tampered or generated.",
    constraint=(
        "Ground every claim in what is visible or in the listed evidence, and cite the [E] "
        "ids you use. Say when you cannot tell. Never identify people."
    ),
    style="Short, plain English.",
).render()


def report_grounding(report: Report) -> list[str]:
    """The report as lines for the chat: verdict, attribution, evidence, regions, experts."""
    v, a = report.verdict, report.attribution
    probs = ", ".join(f"{k} {p:.2f}" for k, p in v.probabilities.items())
    lines = [f"Forenscope verdict: {v.label} (probability {v.probability:.2f}; {probs}; "
             f"decided by {v.decided_by})",
             f"Attribution: method {a.method}, scope {a.scope}. {a.basis}".strip()]  # fmt: skip
    lines += [f"Key evidence: {e.summary}" for e in report.key_evidence[:MAX_GROUNDING_EVIDENCE]]
    lines += [r.description for r in report.regions[:5]]  # "Region 1: ... flagged by ..."
    for r in report.experts:
        if r.judged and r.score is not None:
            lines.append(f"Expert {r.expert}: score {r.score:.2f}")
        else:
            why = r.error.message if r.error else (r.abstain_reason or "abstained")
            lines.append(f"Expert {r.expert}: did not judge ({why})")
    if report.llm is not None and report.llm.stage1.probability is not None:
        lines.append(
            f"An LLM ({report.llm.model}) gave P(tampered or AI-generated) "
            f"{report.llm.stage1.probability:.2f} ({report.llm.verdict_agreement} with experts)"
        )
    return lines


def chat_messages(
    config: LLMConfig,
    image: ImageLike | None,
    grounding: Sequence[str],
    turns: Sequence[dict[str, str]],
) -> list[dict[str, Any]]:
    """System prompt, the image (None: text only) with its numbered grounding, an
    acknowledgement, then the turns."""
    text = "Here is the image." if image is not None else "The image is not attached."
    if grounding:
        items = "\n".join(f"[E{i}] {t}" for i, t in enumerate(grounding, 1))
        text += " Forensic tools reported (they can be wrong):\n" + items
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image is not None:
        content.append(encode_image(image, config.image_policy).content_part())
    first = {"role": "user", "content": content}
    ack = {"role": "assistant", "content": "Understood. What would you like to know?"}
    return [{"role": "system", "content": _CHAT_SYSTEM}, first, ack, *turns]


async def achat(config: LLMConfig, messages: list[dict[str, Any]]) -> str:
    """One answer; never cached (the conversation is the state)."""
    body = build_request(config.model, messages, temperature=0.2, max_tokens=600)
    async with AsyncLLMClient(config) as client:
        resp = await client.complete(body)
    return (answer_texts(resp.data) or [None])[0] or ""


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
        return chat_messages(config, self.image, self.evidence, self.turns)

    async def ask(self, config: LLMConfig, question: str) -> str:
        """Ask, and keep the turn only once it is answered (a failed call leaves no trace)."""
        asked = {"role": "user", "content": question}
        answer = await achat(config, chat_messages(config, self.image, self.evidence,
                                                   [*self.turns, asked]))  # fmt: skip
        self.turns += [asked, {"role": "assistant", "content": answer}]
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
