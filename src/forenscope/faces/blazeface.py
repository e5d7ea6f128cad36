"""BlazeFace decoding: SSD anchors, box + 6 keypoint regression, weighted non-max suppression.

Follows MediaPipe's face_detection_{short,full}_range graphs (anchor options, scales, sigmoid
scores, weighted NMS at IoU 0.3). Keypoints are, in order: the person's right eye, left eye,
nose tip, mouth centre, right ear tragion, left ear tragion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class BlazeConfig:
    size: int  # square input side
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2 with an interpolated scale, 1 without
    min_score: float


SHORT_RANGE = BlazeConfig(size=128, strides=(8, 16, 16, 16), anchors_per_layer=2, min_score=0.5)
FULL_RANGE = BlazeConfig(size=192, strides=(4,), anchors_per_layer=1, min_score=0.5)


@dataclass
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray  # (6, 2) in image pixels
    score: float


@lru_cache(maxsize=4)
def anchors(cfg: BlazeConfig) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1]; layers sharing a stride share one grid (read only:
    one array per config is shared by every call)."""
    out: list[np.ndarray] = []
    i = 0
    while i < len(cfg.strides):
        stride, n = cfg.strides[i], 0
        while i < len(cfg.strides) and cfg.strides[i] == stride:
            n += cfg.anchors_per_layer
            i += 1
        side = int(np.ceil(cfg.size / stride))
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        centres = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
    table = np.concatenate(out).astype(np.float32)
    table.flags.writeable = False
    return table


def letterbox(rgb: np.ndarray | Image.Image, size: int) -> tuple[np.ndarray, float, float, float]:
    """Resize keeping the aspect ratio and pad to size x size; returns (img, scale, padx, pady).

    Takes a Pillow image too: callers that letterbox several crops of one image convert it
    once and crop in Pillow, instead of copying each crop through `Image.fromarray`."""
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    nw, nh = fitted_size(img.size, size)
    return pad(np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR)), img.size, size)


def fitted_size(image_size: tuple[int, int], size: int) -> tuple[int, int]:
    """(width, height) of an image of `image_size` (w, h) scaled to fit size x size."""
    w, h = image_size
    scale = size / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def pad(
    small: np.ndarray, image_size: tuple[int, int], size: int
) -> tuple[np.ndarray, float, float, float]:
    """`letterbox` of an image of `image_size` (w, h) already resized to `fitted_size`."""
    w, h = image_size
    scale = size / max(h, w)
    nh, nw = small.shape[:2]
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = small
    return canvas, scale, float(px), float(py)


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, cfg: BlazeConfig, anchor: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N,4) x0y0x1y1, keypoints (N,6,2) in [0,1] of the input, and sigmoid scores (N,)."""
    reg = raw_boxes.reshape(-1, 16) / cfg.size
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -100, 100)))
    cx, cy = reg[:, 0] + anchor[:, 0], reg[:, 1] + anchor[:, 1]
    w, h = reg[:, 2], reg[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = reg[:, 4:].reshape(-1, 6, 2) + anchor[:, None, :]
    return boxes, kps, scores


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9))


def weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, threshold: float = 0.3
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    out: list[tuple[np.ndarray, np.ndarray, float]] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (iou(boxes[i], boxes) > threshold)
        group[i] = True
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((box, kp, float(scores[i])))
        alive &= ~group
    return out


def detect(model_run: object, rgb: np.ndarray | Image.Image, cfg: BlazeConfig) -> list[Detection]:
    """Run a BlazeFace model (a `TFLiteModel.run`) on an RGB image (array or Pillow RGB
    image); detections in image px."""
    w, h = rgb.size if isinstance(rgb, Image.Image) else (rgb.shape[1], rgb.shape[0])
    return detect_letterboxed(model_run, letterbox(rgb, cfg.size), (w, h), cfg)


def detect_letterboxed(
    model_run: object,
    boxed: tuple[np.ndarray, float, float, float],
    image_size: tuple[int, int],
    cfg: BlazeConfig,
) -> list[Detection]:
    """`detect` from the image's `letterbox` (or `pad` of its resized copy); image_size is
    (w, h)."""
    img, scale, px, py = boxed
    tensor = (img.astype(np.float32)[None] / 127.5) - 1.0
    outputs = model_run(tensor)  # type: ignore[operator]
    raw_boxes = next(o for o in outputs if o.shape[-1] == 16)
    raw_scores = next(o for o in outputs if o.shape[-1] == 1)
    boxes, kps, scores = decode(raw_boxes, raw_scores, cfg, anchors(cfg))
    keep = scores >= cfg.min_score
    found = weighted_nms(boxes[keep], kps[keep], scores[keep])
    dets: list[Detection] = []
    w, h = image_size
    for box, kp, score in found:
        b = (box * cfg.size - np.array([px, py, px, py])) / scale
        b = np.clip(b, 0, [w, h, w, h])
        k = (kp * cfg.size - np.array([px, py])) / scale
        if b[2] - b[0] >= 2 and b[3] - b[1] >= 2:
            dets.append(Detection(box=b.astype(np.float64), keypoints=k, score=score))
    return dets
