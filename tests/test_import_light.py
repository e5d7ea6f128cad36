"""`import forenscope` must not pull in heavy or optional libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["onnxruntime", "torch", "fastapi", "flask", "httpx", "cv2", "c2pa", "openai", "sklearn"]


def test_import_is_light() -> None:
    code = (
        "import sys, forenscope, forenscope.types; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_analyze_does_not_load_heavy_optional_libraries() -> None:
    code = (
        "import sys, forenscope; from forenscope.pipeline import analyze; "
        f"print([m for m in {['torch', 'fastapi', 'flask', 'onnxruntime']!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
