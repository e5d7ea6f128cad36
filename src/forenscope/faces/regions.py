"""Named facial regions as polygons, from the 468-point mesh or, roughly, from a box + keypoints.

Regions are returned in priority order: where two overlap, the earlier one owns the pixels (an
eye beats the cheek around it; the background ring owns only what no face part claims).
Mesh indices are MediaPipe's canonical face-mesh topology.
"""

from __future__ import annotations

import numpy as np

from ..types import BBox
from ..types.faces import FaceRegion
from .detect import Face

# MediaPipe face-mesh indices; "right"/"left" are the person's own sides.
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109]  # fmt: skip
PARTS: dict[str, list[int]] = {
    "right eye": [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
    "left eye": [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466],
    "right eyebrow": [46, 53, 52, 65, 55, 70, 63, 105, 66, 107],
    "left eyebrow": [276, 283, 282, 295, 285, 300, 293, 334, 296, 336],
    "mouth": [
        61,
        146,
        91,
        181,
        84,
        17,
        314,
        405,
        321,
        375,
        291,
        409,
        270,
        269,
        267,
        0,
        37,
        39,
        40,
        185,
    ],  # fmt: skip
    "nose": [
        168,
        6,
        197,
        195,
        5,
        4,
        1,
        19,
        94,
        2,
        98,
        97,
        326,
        327,
        294,
        278,
        344,
        440,
        275,
        45,
        220,
        115,
        48,
        64,
    ],  # fmt: skip
    "chin": [176, 148, 152, 377, 400, 199, 200],
}
# Part outlines (ordered, not hulls) for regions that are not convex.
RIGHT_CHEEK = [234, 33, 145, 133, 48, 61, 172, 132, 93]
LEFT_CHEEK = [454, 263, 374, 362, 278, 291, 397, 361, 323]
FOREHEAD = [162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389, 300, 293, 334, 296,
            336, 9, 107, 66, 105, 63, 70]  # fmt: skip
UPPER_ARC = [234, 127, 162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389, 356, 454]
LOWER_ARC = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397,
             288, 361, 323, 454]  # fmt: skip
EXPAND = {"right eye": 1.3, "left eye": 1.3, "right eyebrow": 1.2, "left eyebrow": 1.2,
          "mouth": 1.1}  # fmt: skip
# Priority order (earlier owns overlapping pixels).
ORDER = ("right eye", "left eye", "right eyebrow", "left eyebrow", "mouth", "nose", "chin",
         "jaw line", "right cheek", "left cheek", "hairline", "forehead", "right ear", "left ear",
         "neck", "face skin", "background near the face")  # fmt: skip


def hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of (N, 2) points, counter-clockwise."""
    pts = sorted(map(tuple, points.tolist()))
    if len(pts) < 3:
        return np.asarray(pts, dtype=np.float64)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def scale_about(points: np.ndarray, centre: np.ndarray, factor: float) -> np.ndarray:
    return np.asarray(centre + (points - centre) * factor)


def band(arc: np.ndarray, centre: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """The strip between an arc scaled by `inner` and by `outer` about the face centre."""
    return np.concatenate([scale_about(arc, centre, inner), scale_about(arc, centre, outer)[::-1]])


def _frame(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the eye line (towards the person's left) and down the face."""
    ex = np.array([np.cos(face.roll), np.sin(face.roll)])
    return ex, np.array([-ex[1], ex[0]])


def _ears(face: Face, oval: np.ndarray, width: float, height: float) -> dict[str, np.ndarray]:
    """Ears are not in the mesh: a box beside the face outline at the tragion (or eye) level."""
    ex, ey = _frame(face)
    centre = oval.mean(axis=0)
    out = {}
    for name, sign, kp in (("right ear", -1.0, "right_ear"), ("left ear", 1.0, "left_ear")):
        side = oval[np.argmax(((oval - centre) @ ex) * sign)]
        anchor = np.asarray(face.keypoints.get(kp, side))
        # the tragion sits at the ear's front edge; the ear extends outwards and a little up
        c = anchor + ex * sign * 0.08 * width - ey * 0.02 * height
        hw, hh = 0.1 * width, 0.16 * height
        out[name] = np.array([c + sx * hw * ex + sy * hh * ey for sx, sy in
                              ((-1, -1), (1, -1), (1, 1), (-1, 1))])  # fmt: skip
    return out


def _common(
    face: Face, oval: np.ndarray, upper: np.ndarray, lower: np.ndarray
) -> dict[str, np.ndarray]:
    """Regions built the same way in both modes: bands, ears, neck, skin and background."""
    centre = oval.mean(axis=0)
    ex, ey = _frame(face)
    width = float(np.ptp(oval @ ex))
    height = float(np.ptp(oval @ ey))
    neck_top = lower[len(lower) // 4 : 3 * len(lower) // 4 + 1]
    return {
        "jaw line": band(lower, centre, 0.92, 1.08),
        "hairline": band(upper, centre, 0.92, 1.3),
        **_ears(face, oval, width, height),
        "neck": np.concatenate([neck_top, neck_top[::-1] + ey * 0.45 * height]),
        "face skin": oval,
        "background near the face": scale_about(oval, centre, 1.6),
    }


def mesh_regions(face: Face) -> dict[str, np.ndarray]:
    lm = face.mesh
    assert lm is not None
    oval = lm[FACE_OVAL]
    polys: dict[str, np.ndarray] = {}
    for name, idx in PARTS.items():
        pts = hull(lm[idx])
        polys[name] = scale_about(pts, pts.mean(axis=0), EXPAND.get(name, 1.0))
    polys["right cheek"], polys["left cheek"] = lm[RIGHT_CHEEK], lm[LEFT_CHEEK]
    polys["forehead"] = lm[FOREHEAD]
    polys.update(_common(face, oval, lm[UPPER_ARC], lm[LOWER_ARC]))
    return polys


def _ellipse(c: np.ndarray, ax: np.ndarray, ay: np.ndarray, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.asarray(c + np.cos(t)[:, None] * ax + np.sin(t)[:, None] * ay)


def keypoint_regions(face: Face) -> dict[str, np.ndarray]:
    """Rough regions from the 6 BlazeFace keypoints, or from box proportions when absent."""
    x0, y0, x1, y1 = (float(v) for v in face.box)
    w, h = x1 - x0, y1 - y0
    kp = {k: np.asarray(v) for k, v in face.keypoints.items()}
    reye = kp.get("right_eye", np.array([x0 + 0.32 * w, y0 + 0.4 * h]))
    leye = kp.get("left_eye", np.array([x0 + 0.68 * w, y0 + 0.4 * h]))
    nose = kp.get("nose_tip", np.array([x0 + 0.5 * w, y0 + 0.6 * h]))
    mouth = kp.get("mouth", np.array([x0 + 0.5 * w, y0 + 0.78 * h]))
    ex, ey = _frame(face)
    d = max(float(np.linalg.norm(leye - reye)), 1.0)
    m = max(float((mouth - (reye + leye) / 2) @ ey), 0.5 * d)
    mid = (reye + leye) / 2
    ell = _ellipse
    polys = {
        "right eye": ell(reye, 0.25 * d * ex, 0.13 * d * ey),
        "left eye": ell(leye, 0.25 * d * ex, 0.13 * d * ey),
        "right eyebrow": ell(reye - 0.3 * d * ey, 0.32 * d * ex, 0.1 * d * ey),
        "left eyebrow": ell(leye - 0.3 * d * ey, 0.32 * d * ex, 0.1 * d * ey),
        "mouth": ell(mouth, 0.42 * d * ex, 0.17 * m * ey),
        "nose": ell((mid + nose) / 2 + 0.05 * m * ey, 0.22 * d * ex, 0.45 * m * ey),
        "chin": ell(mouth + 0.48 * m * ey, 0.35 * d * ex, 0.18 * m * ey),
        "right cheek": ell(reye + 0.55 * m * ey - 0.05 * d * ex, 0.3 * d * ex, 0.3 * m * ey),
        "left cheek": ell(leye + 0.55 * m * ey + 0.05 * d * ex, 0.3 * d * ex, 0.3 * m * ey),
        "forehead": ell(mid - 0.7 * d * ey, 0.85 * d * ex, 0.35 * d * ey),
    }
    # typical proportions: forehead top ~1.0 d above the eyes, chin ~1.75 m below them
    centre = mid + (1.75 * m - 1.0 * d) / 2 * ey
    oval = ell(centre, 0.95 * d * ex, (1.0 * d + 1.75 * m) / 2 * ey, 36)
    ang = np.arctan2((oval - centre) @ ey, (oval - centre) @ ex)
    order = np.argsort(ang)
    lower = oval[order][ang[order] >= 0]
    upper = oval[order][ang[order] <= 0]
    polys.update(_common(face, oval, upper, lower))
    return polys


def _bbox(poly: np.ndarray, shape: tuple[int, int]) -> BBox:
    h, w = shape
    x0, y0 = np.clip(np.floor(poly.min(axis=0)), 0, [w, h]).astype(int)
    x1, y1 = np.clip(np.ceil(poly.max(axis=0)), 0, [w, h]).astype(int)
    return BBox(x=int(x0), y=int(y0), width=int(x1 - x0), height=int(y1 - y0))


def face_regions(face: Face, shape: tuple[int, int]) -> list[FaceRegion]:
    """Named regions of one face in priority order; parts entirely off the image are dropped."""
    approximate = face.mesh is None
    polys = keypoint_regions(face) if approximate else mesh_regions(face)
    out = []
    for name in ORDER:
        poly = polys[name]
        box = _bbox(poly, shape)
        if box.width == 0 or box.height == 0:
            continue
        pts = [(round(float(x), 1), round(float(y), 1)) for x, y in poly]
        is_rough = approximate or name in ("right ear", "left ear", "neck", "hairline")
        out.append(FaceRegion(name=name, polygon=pts, bbox=box, approximate=is_rough))
    return out
