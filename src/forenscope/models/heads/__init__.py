"""Shipped linear heads (JSON) and their model cards (Markdown)."""
