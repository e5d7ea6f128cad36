"""Container provenance: encoder and handler tags, creation time, generator names in any tag,
and a C2PA manifest in MP4/MOV where c2pa-python reads one. Read from the file, not the
frames: decoded frames carry none of it."""

from __future__ import annotations

import re
from pathlib import Path

from ..experts.exif import GENERATORS, match_any
from ..types import ClipInfo, Evidence

# Video generators and face-swap tools as they name themselves in tags and comments.
VIDEO_GENERATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in (
        ("OpenAI Sora", r"\bSora\b"),
        ("Runway", r"\bRunway(?:ML)?\b|\bGen-[234]\b"),
        ("Pika", r"\bPika(?:\s?Labs)?\b"),
        ("Luma Dream Machine", r"\bDream Machine\b|\bLuma\s?AI\b"),
        ("Kling", r"\bKling\b"),
        ("Google Veo", r"\bVeo\s?[1-9]?\b"),
        ("CogVideoX", r"\bCogVideoX?\b"),
        ("Open-Sora", r"\bOpen-?Sora\b"),
        ("AnimateDiff", r"\bAnimateDiff\b"),
        ("Stable Video Diffusion", r"\bStable Video Diffusion\b|\bSVD(?:-XT)?\b"),
        ("HunyuanVideo", r"\bHunyuan\s?Video\b"),
        ("LTX-Video", r"\bLTX-?Video\b"),
        ("Hailuo / MiniMax", r"\bHailuo\b|\bMiniMax\b"),
        ("SadTalker", r"\bSadTalker\b"),
        ("roop / FaceFusion / DeepFaceLab", r"\broop\b|\bFaceFusion\b|\bDeepFaceLab\b"),
    )
)
# FFmpeg's demuxer -> the format name experts/c2pa_manifest.MIME knows
C2PA_FORMAT = {"mov,mp4,m4a,3gp,3g2,mj2": "MP4"}
TAG_NOTES = {
    "encoder": "written or re-muxed by this encoder",
    "handler_name": "track handler",
    "creation_time": "creation time recorded in the container",
    "com.apple.quicktime.make": "camera make",
    "com.apple.quicktime.model": "camera model",
    "com.apple.quicktime.software": "recording software",
}


def container_evidence(info: ClipInfo) -> list[Evidence]:
    """One evidence line per telling tag, and a proof when a tag names a generator."""
    out: list[Evidence] = []
    for key, value in sorted(info.tags.items()):
        if key in TAG_NOTES:
            out.append(
                Evidence(
                    kind=f"video.tag.{key}",
                    value=value,
                    summary=f"Container tag {key} = '{value}' ({TAG_NOTES[key]})",
                )  # fmt: skip
            )
    for key, value in sorted(info.tags.items()):
        gen = match_any(value, VIDEO_GENERATORS) or match_any(value, GENERATORS)
        if gen:
            out.append(
                Evidence(
                    kind="video.generator_tag",
                    value=gen,
                    proves="ai_generated",
                    summary=f"Container tag {key} names the generator {gen}: '{value}'",
                )  # fmt: skip
            )
    if info.tags.get("encoder", "").startswith("Lavf"):
        out.append(
            Evidence(
                kind="video.ffmpeg_written",
                value=info.tags["encoder"],
                summary="The file was written by FFmpeg (libavformat), so it is not a "
                "camera-original file: it was transcoded or re-muxed at least once",
            )  # fmt: skip
        )
    return out


def c2pa_evidence(path: Path, info: ClipInfo) -> tuple[list[Evidence], str | None]:
    """C2PA evidence from an MP4/MOV (empty when there is no manifest), or a note why not."""
    fmt = C2PA_FORMAT.get(info.container)
    if fmt is None:
        return [], None
    try:
        import c2pa  # noqa: F401  (only to say when it is missing)

        from ..experts.c2pa_manifest import judge, read_manifest_store, summarize
    except ImportError:
        return [], "C2PA not checked: pip install 'forenscope[c2pa]'"
    try:
        store = read_manifest_store(path.read_bytes(), fmt)
    except Exception as exc:  # the SDK raises its own types for damaged stores
        return [], f"C2PA manifest present but unreadable: {type(exc).__name__}: {exc}"
    return (judge(summarize(store)).evidence if store is not None else []), None
