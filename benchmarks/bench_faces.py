"""Face detector comparison and per-face evidence on ../shared/data (issue 7). Prints tables.

    python benchmarks/bench_faces.py [--data ../shared/data] [--skip-auc]

1. Detectors on the CelebA-style StarGAN faces (20 real + 20 fake, 240x240, one face each) and
   on the 15 Lomiri landscape/camera photos (no faces expected): share of face images with a
   face, with exactly one face, with a 468-point mesh, false faces on the landscapes, and
   milliseconds per image (detection only, decoding excluded, after one warm-up call).
2. Real-vs-fake AUC of the per-face experts on the StarGAN faces, format-aligned (both classes
   are 240x240 PNG as stored, so the container says nothing).
The MediaPipe models must be cached (`forenscope.models.faces.pull_face_models()`).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import time
from pathlib import Path

import numpy as np
from PIL import Image

from forenscope.faces.detect import Backend, detect_faces, mediapipe_available

ROOT = Path(__file__).resolve().parents[1]
BACKENDS: tuple[Backend, ...] = ("mediapipe-short", "mediapipe-full", "mediapipe", "skimage-lbp")


def load(data: Path, path: str, max_side: int | None = None) -> np.ndarray:
    img = Image.open(data / path).convert("RGB")
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side))  # the detectors downscale anyway; keeps RAM low
    return np.asarray(img)


def rows(data: Path) -> tuple[list[tuple[str, str]], list[str]]:
    with open(data / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    faces = [(r["path"], r["label"]) for r in manifest if "stargan" in r["path"]]
    scenery = [r["path"] for r in manifest if "lomiri-wallpapers" in r["path"]]
    return faces, scenery


def unavailable(backend: str) -> str | None:
    if backend.startswith("mediapipe"):
        return mediapipe_available()
    if importlib.util.find_spec("skimage") is None:
        return "scikit-image not installed"
    return None


def bench_detectors(data: Path) -> None:
    faces, scenery = rows(data)
    face_imgs = [load(data, p) for p, _ in faces]
    scene_imgs = [load(data, p, 2048) for p in scenery]
    print(f"## Detectors: {len(face_imgs)} StarGAN face images, {len(scene_imgs)} landscapes\n")
    print("| detector | face found | exactly one | mesh | ms/face image | false faces on "
          "landscapes (images) | ms/landscape |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for backend in BACKENDS:
        why = unavailable(backend)
        if why:
            print(f"| {backend} | n/a: {why} | | | | | |")
            continue
        detect_faces(np.zeros((64, 64, 3), np.uint8) + 1, backend)  # warm-up: model load
        counts, meshes, t_face = [], 0, 0.0
        for img in face_imgs:
            t = time.perf_counter()
            found = detect_faces(img, backend)
            t_face += time.perf_counter() - t
            counts.append(len(found))
            meshes += any(f.mesh is not None for f in found)
        false, false_imgs, t_scene = 0, 0, 0.0
        for img in scene_imgs:
            t = time.perf_counter()
            found = detect_faces(img, backend)
            t_scene += time.perf_counter() - t
            false += len(found)
            false_imgs += bool(found)
        n, m = len(face_imgs), len(scene_imgs)
        c = np.array(counts)
        print(
            f"| {backend} | {np.mean(c >= 1):.0%} | {np.mean(c == 1):.0%} | {meshes / n:.0%} | "
            f"{1000 * t_face / n:.1f} | {false} ({false_imgs}/{m}) | {1000 * t_scene / m:.0f} |"
        )
    print(
        "| opencv haar (4.x xml) | n/a: opencv-python-headless 5.0 has no CascadeClassifier "
        "and its wheel ships no cascade xml | | | | | |\n"
    )


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney AUC (ties count half)."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / max(p.size * n.size, 1))


def bench_auc(data: Path) -> None:
    """Real-vs-fake AUC of each face expert (abstentions scored 0) on the StarGAN faces."""
    from forenscope.experts.clip_detector import ClipDetector
    from forenscope.experts.face_clip import FaceClipExpert
    from forenscope.experts.face_consistency import FaceConsistencyExpert
    from forenscope.experts.face_eyes import FaceEyeHighlightsExpert
    from forenscope.experts.face_seam import FaceSeamExpert
    from forenscope.io.input import ImageInput

    faces, _ = rows(data)
    experts = [
        FaceSeamExpert(),
        FaceConsistencyExpert(),
        FaceEyeHighlightsExpert(),
        FaceClipExpert(),
        ClipDetector(),  # the whole-image detector, for the with/without comparison
    ]
    scores: dict[str, dict[str, list[float]]] = {
        e.spec.name: {"real": [], "fake": []} for e in experts
    }
    judged: dict[str, int] = dict.fromkeys(scores, 0)
    for path, label in faces:
        raw = (data / path).read_bytes()
        image = ImageInput(rgb=load(data, path), data=raw, format="PNG", mode="RGB")
        for e in experts:
            r = e.analyze(image)
            scores[e.spec.name][label].append(r.score if r.score is not None else 0.0)
            judged[e.spec.name] += r.score is not None
    print(f"## Per-face experts, real vs fake on {len(faces)} StarGAN faces (PNG both)\n")
    print("| expert | judged | AUC (fake = positive) | mean score real | mean score fake |")
    print("|---|---|---|---|---|")
    for name, s in scores.items():
        print(
            f"| {name} | {judged[name]}/{len(faces)} | {auc(s['fake'], s['real']):.3f} | "
            f"{np.mean(s['real']):.2f} | {np.mean(s['fake']):.2f} |"
        )
    # with vs without the per-face evidence: the whole-image score alone, and averaged with the
    # face-crop score (a stand-in for fusion, which the lead owns)
    whole, face = scores["clip_detector"], scores["face_clip"]
    both = {k: list((np.asarray(whole[k]) + np.asarray(face[k])) / 2) for k in ("real", "fake")}
    print(
        f"\nclip_detector alone AUC {auc(whole['fake'], whole['real']):.3f}; "
        f"mean(clip_detector, face_clip) AUC {auc(both['fake'], both['real']):.3f}\n"
    )


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity transform (Umeyama) mapping src points onto dst points."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / a.var(0).sum())
    return np.hstack([scale * rot, (md - scale * rot @ ms)[:, None]])


def swap_face(target: np.ndarray, source: np.ndarray) -> np.ndarray | None:
    """A face-swap stand-in: the source face warped onto the target's landmarks and blended in
    with a feathered mask at 0.9x the target's face outline (as face-swap pipelines do)."""
    from PIL import ImageDraw, ImageFilter

    from forenscope.faces.regions import FACE_OVAL

    ft, fs = detect_faces(target), detect_faces(source)
    if len(ft) != 1 or len(fs) != 1 or ft[0].mesh is None or fs[0].mesh is None:
        return None
    inv = similarity(ft[0].mesh, fs[0].mesh)  # target pixel -> source pixel
    coeffs = tuple(float(v) for v in inv.ravel())
    size = (target.shape[1], target.shape[0])
    warped = np.asarray(
        Image.fromarray(source).transform(
            size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
        )
    ).astype(np.float32)
    oval = ft[0].mesh[FACE_OVAL]
    inner = oval.mean(0) + (oval - oval.mean(0)) * 0.9
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in inner.tolist()], fill=255)
    w = np.asarray(mask.filter(ImageFilter.GaussianBlur(3)), np.float32)[..., None] / 255
    return np.asarray((target * (1 - w) + warped * w).round(), np.uint8)


def jpeg(rgb: np.ndarray, quality: int = 90) -> tuple[np.ndarray, bytes]:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), buf.getvalue()


def bench_swaps(data: Path) -> None:
    """Clean real faces vs synthetic swaps (another real face pasted in), as PNG and as JPEG."""
    from forenscope.experts.face_clip import FaceClipExpert
    from forenscope.experts.face_consistency import FaceConsistencyExpert
    from forenscope.experts.face_seam import FaceSeamExpert
    from forenscope.faces.describe import describe_region_on_faces
    from forenscope.faces.report import face_reports
    from forenscope.io.input import ImageInput
    from forenscope.types import BBox

    faces, _ = rows(data)
    reals = [load(data, p) for p, label in faces if label == "real"]
    swaps = [swap_face(t, reals[(i + 1) % len(reals)]) for i, t in enumerate(reals)]
    pairs = [(r, s) for r, s in zip(reals, swaps, strict=True) if s is not None]
    experts = [FaceSeamExpert(), FaceConsistencyExpert(), FaceClipExpert()]
    print(f"## Synthetic face swaps: {len(pairs)} real StarGAN-set faces, each vs itself with "
          "the next real face pasted in (feathered at 0.9x the outline)\n")  # fmt: skip
    print("| expert | AUC as PNG | AUC both JPEG q90 |")
    print("|---|---|---|")
    for e in experts:
        row = []
        for fmt in ("PNG", "JPEG"):
            sc: dict[str, list[float]] = {"clean": [], "swap": []}
            for clean, swapped in pairs:
                for key, rgb in (("clean", clean), ("swap", swapped)):
                    raw = b""
                    if fmt == "JPEG":
                        rgb, raw = jpeg(rgb)
                    r = e.analyze(
                        ImageInput(rgb=rgb, data=raw or rgb.tobytes(), format=fmt, mode="RGB")
                    )
                    sc[key].append(r.score if r.score is not None else 0.0)
            row.append(f"{auc(sc['swap'], sc['clean']):.3f}")
        print(f"| {e.spec.name} | {row[0]} | {row[1]} |")
    # naming: a box on the pasted cheek is described by face part
    clean, swapped = pairs[0]
    reports = face_reports(detect_faces(swapped), swapped.shape[:2])
    cheek = next(r.bbox for r in reports[0].regions if r.name == "left cheek")
    box = BBox(x=cheek.x + cheek.width // 3, y=cheek.y + cheek.height // 3, width=8, height=8)
    words = describe_region_on_faces(box, reports)
    print(f"\nbox {box.x},{box.y} 8x8 on the first swap is '{words}'\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--skip-auc", action="store_true")
    args = ap.parse_args()
    bench_detectors(args.data)
    if not args.skip_auc:
        bench_auc(args.data)
        bench_swaps(args.data)


if __name__ == "__main__":
    main()
