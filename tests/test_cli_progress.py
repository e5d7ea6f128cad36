"""`forenscope analyze` says what it does on stderr: the models loading, then each expert as it
finishes (issue 15, cold start and staged results); stdout and --json stay clean."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.cli import main
from forenscope.forgeries import example_photo

EXPERTS = "exif,ela,noise"


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(example_photo()).save(path, quality=90)
    return path


def test_progress_lines_name_each_expert_on_stderr_only(photo: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(photo), "--experts", EXPERTS, "--progress"])
    assert result.exit_code in (0, 1, 4), result.output
    err = result.stderr.splitlines()
    assert err[0] == "Loading the experts' models, then analysing photo.jpg (0.8 MP) ..."
    steps = [line.strip() for line in err if line.strip().startswith("[")]
    assert [s.split("]")[0] for s in steps] == ["[1/3", "[2/3", "[3/3"]
    assert sorted(s.split()[1].rstrip(":") for s in steps) == ["ela", "exif", "noise"]
    assert steps[-1].endswith("fusing them into the verdict and maps ...")
    assert "[1/3]" not in result.stdout and "Loading" not in result.stdout


def test_json_output_stays_clean_with_or_without_progress(photo: Path) -> None:
    quiet = CliRunner().invoke(main, ["analyze", str(photo), "--experts", EXPERTS, "--json"])
    assert "Loading" not in quiet.stderr and "[1/3]" not in quiet.stderr
    both = CliRunner().invoke(
        main, ["analyze", str(photo), "--experts", EXPERTS, "--json", "--progress"]
    )
    assert "[3/3]" in both.stderr
    for out in (quiet.stdout, both.stdout):
        (line,) = out.strip().splitlines()
        assert json.loads(line)["image"]["width"] == 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_on_a_terminal_the_bar_shows_the_experts_without_a_flag(photo: Path) -> None:
    """stderr on a pty (as in a user's shell): the loading line, and the bar's postfix names
    the experts; with --no-progress, neither."""
    import fcntl
    import pty
    import termios

    outputs = []
    for flag in ([], ["--no-progress"]):
        main_fd, child_fd = pty.openpty()
        fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        cmd = [sys.executable, "-m", "forenscope", "analyze", str(photo), "--experts", EXPERTS]
        proc = subprocess.run(
            cmd + flag, stderr=child_fd, stdout=subprocess.PIPE, timeout=120,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        os.close(child_fd)
        buf = io.BytesIO()
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the terminal's writer is gone and everything was read
                break
            if not chunk:
                break
            buf.write(chunk)
        os.close(main_fd)
        assert proc.returncode in (0, 1, 4)
        assert "photo.jpg" in proc.stdout.decode()
        outputs.append(buf.getvalue().decode(errors="replace"))
    shown, hidden = outputs
    assert "Loading the experts' models" in shown and "3/3 experts" in shown
    assert "Loading" not in hidden and "experts, last" not in hidden
