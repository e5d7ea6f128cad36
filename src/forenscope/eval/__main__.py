"""`python -m forenscope.eval ...` (the same as `forenscope eval ...` once attached)."""

from .cli import eval_cli

eval_cli(prog_name="forenscope eval")
