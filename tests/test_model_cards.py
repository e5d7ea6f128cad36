"""One model-card layout for every trained model: data and licences, metrics, how to rebuild."""

from __future__ import annotations

from pathlib import Path

from forenscope.train.card import Card, render
from forenscope.train.data import TrainingImage


def _sample(source: str, licence: str, label: str = "real") -> TrainingImage:
    return TrainingImage(Path(f"{source}.png"), label, "none", "real", source, licence, "0" * 64)


def _card(samples: list[TrainingImage]) -> str:
    return render(
        Card(
            name="demo-head",
            summary="A demo head.",
            samples=samples,
            alignment="256 px, JPEG q90",
            metrics={"auc": 0.91},
            command="forenscope train --detector demo",
            sections=[("Training", ["Two epochs."])],
            reproduce_notes=["- seed: `0`"],
        )
    )


def test_card_lists_sources_licences_metrics_and_the_command() -> None:
    text = _card([_sample("kodak", "CC0-1.0"), _sample("kodak", "CC0-1.0")])
    assert "# Model card: `demo-head`" in text and "| kodak | real | none | 2 |" in text
    assert "| kodak | CC0-1.0 |" in text and "| auc | 0.91 |" in text
    assert "## Training\n\nTwo epochs." in text and "forenscope train --detector demo" in text
    assert "Research use only" not in text


def test_a_research_only_source_puts_the_warning_first() -> None:
    text = _card([_sample("kodak", "CC0-1.0"), _sample("cnndetection", "research only")])
    assert text.index("Research use only") < text.index("## Training data")
