"""How much say each expert has in the hand-set verdict and the hand-set fused map."""

from __future__ import annotations

TAMPER_TARGETS = ("tampered", "both")
"""Experts with these targets draw tamper maps and vote for "tampered"."""

DEFAULT_WEIGHT = 1.0
# Hand-set starting points (not fitted): signal experts with many false alarms on clean,
# re-compressed photos get less say than matching-based or learned ones.
EXPERT_WEIGHTS: dict[str, float] = {
    "ela": 0.6,
    "noise": 0.7,
    "jpeg_artifacts": 0.9,
    "spectrum": 0.7,
    "copy_move": 1.2,
    "exif": 0.5,
    "c2pa": 1.0,
    "clip_detector": 1.2,
    "generator_metadata": 1.0,
    "watermark": 1.0,
}


def expert_weight(name: str) -> float:
    return EXPERT_WEIGHTS.get(name, DEFAULT_WEIGHT)
