"""`forenscope analyze` and `forenscope.analyze_media` take clips (issue 17): a mixed folder of
images and clips in one run, clips routed by suffix, magic bytes or animation, limits checked
before decoding, the exit code from the clip verdict, resume of a mixed --out run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

import forenscope
from forenscope.cli import main
from forenscope.types import Report, VideoReport
from forenscope.video.dispatch import is_clip, split_media
from video_fixtures import background, write_clip

pytest.importorskip("av", reason="PyAV is a core dependency of the video extra")
EXIT = {"clean": 0, "suspicious": 1, "inconclusive": 4}


def status_of(label: str) -> str:
    return {"real": "clean", "inconclusive": "inconclusive"}.get(label, "suspicious")


def mixed_folder(root: Path) -> dict[str, Path]:
    root.mkdir()
    frames = [Image.fromarray(background(t * 3)) for t in range(6)]
    files = {
        "clip": write_clip(root / "clip.mp4", [background(t) for t in range(12)]),
        "photo": root / "photo.png",
        "still_gif": root / "still.gif",
        "anim_gif": root / "anim.gif",
        "anim_webp": root / "anim.webp",
    }
    frames[0].save(files["photo"])
    frames[0].save(files["still_gif"])
    for key in ("anim_gif", "anim_webp"):
        frames[0].save(files[key], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return files


def test_clips_are_told_from_images(tmp_path: Path) -> None:
    files = mixed_folder(tmp_path / "in")
    assert is_clip(files["clip"]) and is_clip(files["anim_gif"]) and is_clip(files["anim_webp"])
    assert not is_clip(files["photo"]) and not is_clip(files["still_gif"])
    # no suffix: an MP4 is told by its ftyp brand, a HEIF still's brand is not a video's
    noext = tmp_path / "noext"
    noext.write_bytes(files["clip"].read_bytes())
    assert is_clip(noext)
    heic = tmp_path / "still.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    assert not is_clip(heic)
    (tmp_path / "fake.txt").write_text("hello")
    assert not is_clip(tmp_path / "fake.txt")
    images, clips = split_media([str(tmp_path / "in")])
    assert sorted(p.name for p in clips) == ["anim.gif", "anim.webp", "clip.mp4"]
    assert sorted(p.name for p in images) == ["photo.png", "still.gif"]


def test_analyze_takes_a_mixed_folder_exits_on_clip_verdicts_and_resumes(tmp_path: Path) -> None:
    files = mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    args = ["analyze", str(tmp_path / "in"), "--experts", "ela", "--json", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    docs = [json.loads(ln) for ln in result.stdout.splitlines() if ln.startswith("{")]
    kinds = {Path(d["clip"]["path"] if "clip" in d else d["image"]["path"]).name: (
        "clip" if "clip" in d else "image") for d in docs}  # fmt: skip
    assert kinds == {"clip.mp4": "clip", "anim.gif": "clip", "anim.webp": "clip",
                     "photo.png": "image", "still.gif": "image"}, result.output  # fmt: skip
    clip_doc = next(d for d in docs if "clip" in d and d["clip"]["path"].endswith("clip.mp4"))
    assert clip_doc["clip"]["frames"] == 12 and clip_doc["verdict"]["calibrated"] is False
    statuses = [status_of(d["verdict"]["label"]) for d in docs]
    expected = 1 if "suspicious" in statuses else 4 if "inconclusive" in statuses else 0
    assert result.exit_code == expected, result.output
    index = [json.loads(ln) for ln in (out / "index.jsonl").read_text().splitlines()]
    assert len(index) == 5 and all(r["status"] != "error" for r in index)
    clip_row = next(r for r in index if r["path"].endswith("clip.mp4"))
    assert Path(clip_row["outputs"]["html"]).exists() and clip_row["summary"].startswith("clip: ")
    assert clip_row["sha256"] == VideoReport.model_validate(clip_doc).clip.sha256
    # a re-run skips all five and still exits on them
    again = CliRunner().invoke(main, args)
    assert again.exit_code == expected and "(5 of them done by an earlier run)" in again.output
    assert len((out / "index.jsonl").read_text().splitlines()) == 5
    assert files["clip"].exists()


def test_a_single_clip_exits_as_its_verdict_and_a_bad_clip_costs_only_itself(
    tmp_path: Path,
) -> None:
    good = write_clip(tmp_path / "good.mp4", [background(t) for t in range(12)])
    bad = tmp_path / "bad.mov"
    bad.write_text("not a video")
    result = CliRunner().invoke(main, ["analyze", str(good), "--experts", "ela", "--json"])
    label = json.loads(result.stdout.splitlines()[0])["verdict"]["label"]
    assert result.exit_code == EXIT[status_of(label)], result.output
    both = CliRunner().invoke(main, ["analyze", str(bad), str(good), "--experts", "ela"])
    assert both.exit_code == 3, both.output
    assert "bad.mov: ERROR: " in both.output and "not a readable video container" in both.output
    assert f"good.mp4: {status_of(label).upper()}: clip: {label}" in both.output


def test_clip_limits_are_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "long.mp4", [background(t) for t in range(12)])
    monkeypatch.setenv("FORENSCOPE_VIDEO_MAX_DURATION_S", "0.2")
    result = CliRunner().invoke(main, ["analyze", str(clip), "--experts", "ela"])
    assert result.exit_code == 3
    assert "long.mp4: ERROR: " in result.output and "duration" in result.output
    assert "over the limit of 0 s; refused before decoding" in result.output


def test_python_api_routes_clips_and_images(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", [background(t) for t in range(8)])
    photo = tmp_path / "p.png"
    Image.fromarray(background(0)).save(photo)
    video = forenscope.analyze_media(clip, budget=1, experts=["ela"])
    image = forenscope.analyze_media(photo, experts=["ela"])
    assert isinstance(video, VideoReport) and video.clip.frames == 8
    assert isinstance(image, Report) and image.image.width == background(0).shape[1]
    assert forenscope.analyze_video is not None


def test_clips_run_in_worker_processes_with_jobs(tmp_path: Path) -> None:
    for name in ("a.mkv", "b.mov"):
        write_clip(tmp_path / name, [background(t) for t in range(8)])
    args = ["analyze", str(tmp_path), "-j", "2", "--experts", "ela", "--json"]
    result = CliRunner().invoke(main, args)
    docs = [json.loads(ln) for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert sorted(Path(d["clip"]["path"]).name for d in docs) == ["a.mkv", "b.mov"]
    assert result.exit_code in (0, 1, 4), result.output


def test_analyze_takes_the_clip_budget_and_size_and_resumes_on_them(tmp_path: Path) -> None:
    """--clip-budget/--clip-max-side reach the clip's analysis (its frames and their size) and
    its resume key: the same settings resume, other settings analyse the clip again."""
    clip = write_clip(tmp_path / "c.mp4", [background(t) for t in range(12)])
    out = tmp_path / "out"

    def run(budget: int, side: int) -> tuple[dict[str, Any], str]:
        args = ["analyze", str(clip), "--experts", "ela", "--json", "--out", str(out),
                "--clip-budget", str(budget), "--clip-max-side", str(side)]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 1, 4), result.output
        docs = [json.loads(ln) for ln in result.stdout.splitlines() if ln.startswith("{")]
        return (docs[0] if docs else {}), result.output

    doc, _ = run(2, 96)
    assert len(doc["frames"]) == 2
    assert (doc["analysis_config"]["budget"], doc["analysis_config"]["max_side"]) == (2, 96)
    assert max(doc["frames"][0]["report"]["image"]["width"],
               doc["frames"][0]["report"]["image"]["height"]) <= 96  # fmt: skip
    again, output = run(2, 96)
    assert again == {} and "(1 of them done by an earlier run)" in output
    for budget, side in ((3, 96), (2, 128)):
        other, output = run(budget, side)
        assert len(other["frames"]) == budget and "earlier run" not in output
        assert other["analysis_config"]["max_side"] == side
    assert len((out / "index.jsonl").read_text().splitlines()) == 3
    bad = CliRunner().invoke(main, ["analyze", str(clip), "--clip-budget", "0"])
    assert bad.exit_code == 2 and "--clip-budget" in bad.output
