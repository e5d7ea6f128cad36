"""Forensic experts: each turns an image into a score, an optional heatmap and evidence."""

from .base import Expert
from .registry import expert_classes, get_expert, list_experts, register_expert

__all__ = ["Expert", "expert_classes", "get_expert", "list_experts", "register_expert"]
