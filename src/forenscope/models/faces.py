"""Face model files: MediaPipe's BlazeFace detector and 468-point face mesh.

Both are .tflite files carried inside the PyPI wheel `mediapipe==0.10.21` (Apache-2.0). We take
the files, not the package (mediapipe pins numpy<2): `pull_face_models()` fetches the wheel with
pip (or reads a wheel you already have), extracts the two members, verifies their sha256 and
caches them like every other model. Nothing is fetched during analysis unless
FORENSCOPE_AUTO_PULL=1. The .tflite members are identical across the wheel's platform builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ModelError
from .registry import ModelSpec
from .sources import auto_pull_enabled, extract_from_wheel, file_sha256

MEDIAPIPE_REQ = "mediapipe==0.10.21"
_LICENCE = "Apache-2.0 (google-ai-edge/mediapipe 0.10.21, PyPI wheel)"

BLAZEFACE_SHORT = ModelSpec(
    name="mediapipe-face-detection-short-range",
    filename="face_detection_short_range.tflite",
    source=f"pypi:{MEDIAPIPE_REQ}",
    member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
    sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    size=229_714,
    licence=_LICENCE,
    description="BlazeFace short-range: (1,128,128,3) in [-1,1] -> 896 anchors x (box + 6 kp)",
)
BLAZEFACE_FULL = ModelSpec(
    name="mediapipe-face-detection-full-range",
    filename="face_detection_full_range_sparse.tflite",
    source=f"pypi:{MEDIAPIPE_REQ}",
    member="mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    size=676_746,
    licence=_LICENCE,
    description="BlazeFace full-range: (1,192,192,3) in [-1,1] -> 2304 anchors x (box + 6 kp)",
)
FACE_MESH = ModelSpec(
    name="mediapipe-face-landmark",
    filename="face_landmark.tflite",
    source=f"pypi:{MEDIAPIPE_REQ}",
    member="mediapipe/modules/face_landmark/face_landmark.tflite",
    sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    size=1_242_398,
    licence=_LICENCE,
    description="Face mesh: (1,192,192,3) in [0,1] -> 468 x (x, y, z) + face-presence logit",
)
FACE_MODELS: dict[str, ModelSpec] = {
    s.name: s for s in (BLAZEFACE_SHORT, BLAZEFACE_FULL, FACE_MESH)
}

OFFLINE_HINT = (
    "the face models are not cached; run forenscope.models.faces.pull_face_models() where PyPI "
    "is reachable (or pass it a downloaded mediapipe-0.10.21 wheel), or set "
    "FORENSCOPE_FACE_MODELS_DIR to a folder holding the .tflite files"
)


def model_path(spec: ModelSpec, auto_pull: bool | None = None) -> Path:
    """Verified local path of one face model; raises ModelError with the fix when absent."""
    env_dir = os.environ.get("FORENSCOPE_FACE_MODELS_DIR")
    path = Path(env_dir) / spec.filename if env_dir else spec.cached_path()
    if not path.is_file():
        if env_dir or not (auto_pull_enabled() if auto_pull is None else auto_pull):
            raise ModelError(f"{spec.filename}: {OFFLINE_HINT}")
        pull_face_models()
    if file_sha256(path) != spec.sha256:
        raise ModelError(f"{path} does not match its pinned sha256; pull the face models again")
    return path


def pull_face_models(wheel: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Fetch (or read `wheel`), verify and cache every face model; return their paths."""
    todo = [
        s
        for s in FACE_MODELS.values()
        if force or not s.cached_path().is_file() or file_sha256(s.cached_path()) != s.sha256
    ]
    if todo and wheel is not None:
        for spec in todo:
            extract_from_wheel(wheel, spec)
    elif todo:
        with tempfile.TemporaryDirectory(prefix="forenscope-faces-") as tmp:
            whl = _pip_download(Path(tmp))
            for spec in todo:
                extract_from_wheel(whl, spec)
    return {name: s.cached_path() for name, s in FACE_MODELS.items()}


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", MEDIAPIPE_REQ, "--no-deps"]
    cmd += ["--only-binary=:all:", "--disable-pip-version-check", "--no-input", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("mediapipe-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or "").strip().splitlines()[-1:]
        raise ModelError(f"`pip download {MEDIAPIPE_REQ}` failed: {tail}; {OFFLINE_HINT}")
    return wheels[0]
