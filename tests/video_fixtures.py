"""Clips the video tests write with PyAV's real encoder (libx264 in its wheels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forenscope.types import BBox

W, H, N = 160, 120, 40


def background(t: int, zoom: float = 1.0) -> np.ndarray:
    """A smooth texture panning one pixel per frame (ordinary motion), magnified `zoom` times
    about the centre."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    x = (xx - W / 2) / zoom + W / 2 + t
    y = (yy - H / 2) / zoom + H / 2
    g = 120 + 50 * np.sin(x / 9.0) * np.cos(y / 13.0) + 30 * np.sin((x + y) / 23.0)
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def write_clip(
    path: Path, frames: list[np.ndarray], fps: int = 25, options: dict[str, str] | None = None
) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = options or {"crf": "12", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


PASTE = BBox(x=90, y=30, width=40, height=36)
SPAN = (12, 27)  # inclusive


def pasted_clip(path: Path, edit: str = "paste") -> Path:
    """Frames SPAN carry a foreign patch at PASTE ("paste") or a warped copy of that area
    ("warp"); all other frames are the panning background."""
    rng = np.random.default_rng(0)
    patch = (rng.random((PASTE.height // 4, PASTE.width // 4, 3)) * 255).astype(np.uint8)
    patch = np.kron(patch, np.ones((4, 4, 1), np.uint8))
    frames = []
    for t in range(N):
        rgb = background(t)
        ys, xs = slice(PASTE.y, PASTE.y + PASTE.height), slice(PASTE.x, PASTE.x + PASTE.width)
        if SPAN[0] <= t <= SPAN[1]:
            if edit == "paste":
                rgb[ys, xs] = patch
            else:  # the area replaced by a flipped, brightened copy of itself, frozen in time
                rgb[ys, xs] = np.clip(background(SPAN[0])[ys, xs][::-1, ::-1] * 1.4, 0, 255)
        frames.append(rgb)
    return write_clip(path, frames)
