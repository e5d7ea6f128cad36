"""`import forenscope` must not pull in heavy or optional libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from forenscope.cli import LAZY_COMMANDS, load_command, main

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


# What `forenscope --version` and `--help` must not import (issue 15: cold start <= 0.3 s).
CLI_HEAVY = ["numpy", "PIL", "scipy", "pydantic", "onnxruntime", "cv2", "torch", "tqdm", "yaml"]


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_cli_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['forenscope', *{args!r}]\n"
        "from forenscope.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('loaded:', sorted({{m.split('.')[0] for m in sys.modules}} & {set(CLI_HEAVY)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("loaded: []"), out.stdout[-500:]
    assert ("Commands:" in out.stdout) == (args == ["--help"])


def test_cli_lists_each_command_with_its_own_short_help() -> None:
    """The listing `--help` prints without importing the commands is the commands' own text."""
    for name, (_, _, listed) in LAZY_COMMANDS.items():
        command = load_command(name)
        assert command.get_short_help_str(limit=10_000) == listed, name


def test_cli_runs_a_lazily_loaded_command() -> None:
    result = CliRunner().invoke(main, ["experts", "--json"])
    assert result.exit_code == 0, result.output
    assert any(row["name"] == "ela" for row in json.loads(result.output))
