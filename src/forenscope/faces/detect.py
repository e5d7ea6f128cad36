"""Find faces: MediaPipe BlazeFace + face mesh (preferred) or scikit-image's LBP cascade.

`detect_faces(rgb)` returns faces numbered left to right. It raises `FaceDetectorUnavailable`
(with the fix in the message) when no backend can run, so callers abstain with that reason.
Results are memoised per image content, so several face experts share one detection.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..errors import ForenscopeError
from ..map_geometry import averaging
from ..models.faces import BLAZEFACE_FULL, BLAZEFACE_SHORT, FACE_MESH, model_path
from . import blazeface, mesh

Backend = Literal["auto", "mediapipe", "mediapipe-short", "mediapipe-full", "skimage-lbp"]
BACKENDS = ("mediapipe", "mediapipe-short", "mediapipe-full", "skimage-lbp")
MIN_MESH_SIDE = 32  # below this many pixels a 468-point mesh is guesswork: keep keypoints only
MAX_FACES = 16
TILE_FROM = 768  # images with a longer side above this are also searched tile by tile
TILE_MIN = 384
MIN_SMALL_SCORE = 0.7  # detector confidence needed for faces too small for the mesh
# Faces are detected on the image averaged over 2x2 pixels above this (copy_move's limit too):
# nothing changes up to it, which covers every image of the benchmarks' data.
DETECT_MAX_PIXELS = 24_000_000
CASCADE_MAX_SIDE = 480  # the cascade is slow on large images; faces smaller than ~5% are lost


class FaceDetectorUnavailable(ForenscopeError):
    """No face detector backend can run here; the message says what to install or pull."""


@dataclass
class Face:
    """One detected face in image pixels (internal; `faces.report` turns it into FaceBox)."""

    box: np.ndarray  # x0, y0, x1, y1
    score: float | None
    detector: str
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)
    mesh: np.ndarray | None = None  # (468, 2)
    roll: float = 0.0  # radians

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@lru_cache(maxsize=4)
def _tflite(name: str) -> object:
    from .tflite import TFLiteModel

    spec = {s.name: s for s in (BLAZEFACE_SHORT, BLAZEFACE_FULL, FACE_MESH)}[name]
    return TFLiteModel(model_path(spec))


def mediapipe_available() -> str | None:
    """None when the TFLite runtime and the cached models are there, else why not."""
    from .tflite import runtime_module

    if runtime_module() is None:
        return "no TFLite runtime: pip install ai-edge-litert (extra 'faces')"
    try:
        for spec in (BLAZEFACE_SHORT, BLAZEFACE_FULL, FACE_MESH):
            model_path(spec)
    except ForenscopeError as exc:
        return str(exc)
    return None


def _candidates(rgb: np.ndarray, ranges: tuple[str, ...]) -> list[blazeface.Detection]:
    """Whole-image detections (short range first, full range as a fallback), plus full-range
    detections on overlapping tiles of large images, where a small face would shrink to a few
    pixels in the 128/192 px model input.

    Above DETECT_MAX_PIXELS they are made on the image averaged over f x f pixels (`reduce`) and
    scaled back: the model inputs are 128/192 px, and the resizes down to them read every pixel
    of the full image several times (0.4 of 0.7 s at 48 MP)."""
    # One conversion to a Pillow image, for the whole image and its tiles (`Image.fromarray` of
    # each tile's array slice copied it three times). Same pixels, same output.
    img = Image.fromarray(np.ascontiguousarray(rgb))
    f = averaging(rgb.shape[0] * rgb.shape[1], DETECT_MAX_PIXELS)
    if f == 1:
        return _detections(img, ranges)
    dets = _detections(img.reduce(f), ranges)
    for d in dets:
        d.box, d.keypoints = d.box * f, d.keypoints * f
    return dets


def _detections(img: Image.Image, ranges: tuple[str, ...]) -> list[blazeface.Detection]:
    """`_candidates` on `img` as it is."""
    dets: list[blazeface.Detection] = []
    for rng in ranges:
        cfg, spec = (
            (blazeface.SHORT_RANGE, BLAZEFACE_SHORT)
            if rng == "short"
            else (blazeface.FULL_RANGE, BLAZEFACE_FULL)
        )
        dets = blazeface.detect(_tflite(spec.name).run, img, cfg)  # type: ignore[attr-defined]
        if dets:
            break
    w, h = img.size
    if "full" in ranges and max(h, w) > TILE_FROM:
        run = _tflite(BLAZEFACE_FULL.name).run  # type: ignore[attr-defined]
        side = max(TILE_MIN, max(h, w) // 4)
        ys, xs = _starts(h, side), _starts(w, side)
        tiles = _tile_letterboxes(img, ys, xs, side, blazeface.FULL_RANGE.size)
        size = (min(side, w), min(side, h))  # a tile's (w, h): clipped to the image
        for y0 in ys:
            for x0 in xs:
                found = blazeface.detect_letterboxed(run, tiles[y0, x0], size, blazeface.FULL_RANGE)
                for d in found:
                    shift = np.array([x0, y0], dtype=np.float64)
                    d.box, d.keypoints = d.box + np.tile(shift, 2), d.keypoints + shift
                    dets.append(d)
        dets = _suppress(dets)
    return dets


def _tile_letterboxes(
    img: Image.Image, ys: list[int], xs: list[int], side: int, size: int
) -> dict[tuple[int, int], tuple[np.ndarray, float, float, float]]:
    """`blazeface.letterbox` of every tile (clipped to the image), keyed by (y0, x0).

    Pillow resizes in two passes, along x then along y, with coefficients that depend only on
    the input and output lengths. So each column of tiles is resized along x once, as one strip
    (the tiles overlap by a quarter), and each tile along y from it: the same pixels as
    resizing each tile, with less work and no copy of every tile.
    """
    w, h = img.size
    tw, th = min(side, w), min(side, h)
    nw, nh = blazeface.fitted_size((tw, th), size)
    out: dict[tuple[int, int], tuple[np.ndarray, float, float, float]] = {}
    for x0 in xs:
        column = img.crop((x0, 0, x0 + tw, h)).resize((nw, h), Image.Resampling.BILINEAR)
        for y0 in ys:
            small = column.crop((0, y0, nw, y0 + th)).resize((nw, nh), Image.Resampling.BILINEAR)
            out[y0, x0] = blazeface.pad(np.asarray(small), (tw, th), size)
    return out


def _starts(length: int, side: int) -> list[int]:
    """Tile origins covering [0, length) with a quarter overlap."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side, side * 3 // 4))
    return starts + [length - side]


def _suppress(dets: list[blazeface.Detection]) -> list[blazeface.Detection]:
    """Drop detections that overlap (IoU > 0.3) or sit mostly inside a more confident one."""
    kept: list[blazeface.Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_distinct(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def _distinct(a: np.ndarray, b: np.ndarray) -> bool:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    smaller = min(float(np.prod(a[2:] - a[:2])), float(np.prod(b[2:] - b[:2])))
    return bool(inter < 0.6 * smaller and blazeface.iou(a, b[None])[0] <= 0.3)


def _mediapipe(rgb: np.ndarray, ranges: tuple[str, ...]) -> list[Face]:
    dets = _candidates(rgb, ranges)
    faces: list[Face] = []
    for det in dets[:MAX_FACES]:
        kps = {
            n: (float(x), float(y))
            for n, (x, y) in zip(blazeface.KEYPOINT_NAMES, det.keypoints, strict=True)
        }
        face = Face(det.box, det.score, "mediapipe-blazeface", kps)
        d = det.keypoints[1] - det.keypoints[0]
        face.roll = float(np.arctan2(d[1], d[0]))
        if min(face.width, face.height) >= MIN_MESH_SIDE:
            run = _tflite(FACE_MESH.name).run  # type: ignore[attr-defined]
            pts, _presence, roll = mesh.landmarks(run, rgb, det.box, det.keypoints)
            if pts is None:
                continue  # the mesh sees no face in the box: a detector false alarm
            face.mesh, face.roll, face.detector = pts, roll, "mediapipe-blazeface+mesh"
        elif det.score < MIN_SMALL_SCORE:
            continue  # too small to verify with the mesh: keep only confident detections
        faces.append(face)
    return faces


def _skimage(rgb: np.ndarray) -> list[Face]:
    try:
        from skimage import data as skdata
        from skimage.feature import Cascade
    except ImportError as exc:
        raise FaceDetectorUnavailable(
            "no face detector: pip install ai-edge-litert (and pull the face models) or "
            "scikit-image"
        ) from exc
    h, w = rgb.shape[:2]
    k = max(1.0, max(h, w) / CASCADE_MAX_SIDE)
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if k > 1:
        from PIL import Image

        size = (max(1, round(w / k)), max(1, round(h / k)))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BILINEAR))
    cascade: Any = _cascade(Cascade, skdata.lbp_frontal_face_cascade_filename())  # type: ignore[no-untyped-call]
    found = cascade.detect_multi_scale(
        img=gray / 255.0,
        scale_factor=1.2,
        step_ratio=1,
        min_size=(24, 24),
        max_size=gray.shape,
        min_neighbor_number=2,
    )
    boxes = [np.array([f["c"], f["r"], f["c"] + f["width"], f["r"] + f["height"]], float) * k
             for f in found]  # fmt: skip
    return [Face(b, None, "skimage-lbp-cascade") for b in _merge_boxes(boxes)[:MAX_FACES]]


def _merge_boxes(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Keep the largest of cascade boxes that share over half of the smaller one's area."""
    kept: list[np.ndarray] = []
    for b in sorted(boxes, key=lambda b: -float((b[2] - b[0]) * (b[3] - b[1]))):
        area = float((b[2] - b[0]) * (b[3] - b[1]))
        overlaps = (
            max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            * max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            for k in kept
        )
        if all(o < 0.5 * area for o in overlaps):
            kept.append(b)
    return kept


_cascades: dict[str, object] = {}


def _cascade(cls: type, path: str) -> object:
    if path not in _cascades:
        _cascades[path] = cls(path)
    return _cascades[path]


def backend_in_effect(backend: Backend = "auto") -> str:
    """The backend `detect_faces` would use; raises FaceDetectorUnavailable when none.

    "auto" means env FORENSCOPE_FACE_DETECTOR if set, else MediaPipe. It never falls back to
    the scikit-image cascade on its own: that finds false faces on 10 of 15 landscape photos
    here, and experts judging a non-face would mislead. Ask for "skimage-lbp" explicitly."""
    if backend == "auto":
        backend = os.environ.get("FORENSCOPE_FACE_DETECTOR", "mediapipe")  # type: ignore[assignment]
    if backend not in BACKENDS:
        raise FaceDetectorUnavailable(f"unknown face detector {backend!r} (known: {BACKENDS})")
    if backend.startswith("mediapipe") and (why := mediapipe_available()) is not None:
        raise FaceDetectorUnavailable(f"no face detector: {why}")
    if backend == "skimage-lbp" and importlib.util.find_spec("skimage") is None:
        raise FaceDetectorUnavailable("the skimage-lbp face detector needs scikit-image")
    return backend


_memo: OrderedDict[tuple[str, str], list[Face]] = OrderedDict()
_memo_lock = threading.Lock()


def detect_faces(rgb: np.ndarray, backend: Backend = "auto", *, memo: bool = True) -> list[Face]:
    """Faces in a uint8 RGB image, numbered left to right; memoised on the pixel content unless
    `memo` is False (a caller with a memo of its own skips hashing the image: 0.05 s at 12 MP)."""
    chosen = backend_in_effect(backend)
    if not memo:
        return _detect(rgb, chosen)
    # The buffer itself is hashed (same bytes as `tobytes()`, without a copy of the image).
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16).hexdigest()
    key = (digest + str(rgb.shape), chosen)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    faces = _detect(rgb, chosen)
    with _memo_lock:
        _memo[key] = faces
        while len(_memo) > 8:
            _memo.popitem(last=False)
    return faces


def _detect(rgb: np.ndarray, chosen: str) -> list[Face]:
    if chosen == "skimage-lbp":
        faces = _skimage(rgb)
    else:
        ranges = {"mediapipe-short": ("short",), "mediapipe-full": ("full",)}
        faces = _mediapipe(rgb, ranges.get(chosen, ("short", "full")))
    faces.sort(key=lambda f: (float(f.box[0]), float(f.box[1])))
    return faces
