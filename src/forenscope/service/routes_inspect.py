"""/v1/analyses/{id}/inspect/...: the analyst's layers and panels, computed on demand from the
stored upload; DELETE /v1/analyses/{id}; /v1/search over the history.

Same guards as routes_analyses: the token (applied where the router is included), the read
rate limit, the id pattern, and admission through the service's analysis slots, so a burst of
ELA requests on 12 MP images queues like analyses instead of filling the thread pool.
"""

from __future__ import annotations

import io
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from PIL import Image
from starlette.datastructures import UploadFile

from ..inspect import (
    JpegPanel,
    MetadataPanel,
    View,
    ela_view,
    embedded_thumbnail,
    full_view,
    gradient_view,
    jpeg_panel,
    metadata_panel,
    noise_view,
)
from ..inspect.views import MAX_ELA_QUALITY, MIN_ELA_QUALITY
from ..io import ImageInput, load_image
from ..io.image import probe_image
from .deps import AnalysisId, Service, ServiceDep, get_row, limit_analyses, limit_reads
from .engine import UnsupportedMediaError, display_name
from .routes_analyses import ERRORS, summary
from .schemas import AnalysisPage, upload_body
from .security import sniff_image
from .store import AnalysisRow

router = APIRouter()
ORIGINAL = "original.bin"
DECODED_KEPT = 2  # decoded images kept per app: the viewer asks several layers of one image
# Inspect computations running at once per app (a 12 MP one holds ~150 MB); the others wait
# as coroutines, holding no thread, so the analyses' admission slots never fill with them.
AT_ONCE = 2
PREVIEW_NOTE = "computed on the stored 1600 px preview: this analysis predates stored uploads"
_IMAGE_ROUTE: dict[str, Any] = {
    "dependencies": [Depends(limit_reads)], "responses": ERRORS, "response_class": Response,
}  # fmt: skip
_JSON_ROUTE: dict[str, Any] = {"dependencies": [Depends(limit_reads)], "responses": ERRORS}


class DecodedImages:
    """A tiny LRU of decoded images by stored report, shared by the app's requests."""

    def __init__(self, size: int = DECODED_KEPT) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], tuple[ImageInput, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: tuple[str, str], load: Callable[[], tuple[ImageInput, bool]]
    ) -> tuple[ImageInput, bool]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()  # outside the lock: decoding a big image must not block other keys
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)


class InspectState:
    """Per-app: the decoded images and the slots of the inspect computations."""

    def __init__(self) -> None:
        self.images = DecodedImages()
        self.slots = anyio.Semaphore(AT_ONCE)


def _state(request: Request) -> InspectState:
    app_state = request.app.state
    found = getattr(app_state, "inspect", None)
    if found is None:
        found = app_state.inspect = InspectState()
    return found


def _load(svc: Service, row: AnalysisRow) -> tuple[ImageInput, bool]:
    """(the decoded upload, True) or, for analyses stored before uploads were kept, the
    preview (False)."""
    path = svc.blobs.artefact(row.sha256, row.params_key, ORIGINAL)
    if path is not None:
        return load_image(path.read_bytes(), limits=svc.analyzer.limits), True
    preview = svc.blobs.artefact(row.sha256, row.params_key, "preview.jpg")
    if preview is None:
        raise HTTPException(404, "this analysis has no stored image")
    return load_image(preview.read_bytes(), limits=svc.analyzer.limits), False


async def _compute(
    svc: Service, request: Request, analysis_id: str, work: Callable[[ImageInput], Any]
) -> tuple[Any, bool]:
    row = get_row(svc, analysis_id)
    state = _state(request)

    def run() -> tuple[Any, bool]:
        image, original = state.images.get((row.sha256, row.params_key), lambda: _load(svc, row))
        return work(image), original

    async with state.slots:
        return await svc.run_analysis(run)


def _png(view: View, original: bool) -> Response:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(view.rgb)).save(buf, "PNG", compress_level=1)
    return _picture(buf.getvalue(), "image/png", view, original)


def _picture(data: bytes, media: str, view: View, original: bool) -> Response:
    note = view.note if original else f"{view.note}; {PREVIEW_NOTE}"
    headers = {
        "X-Forenscope-Note": note.encode("ascii", "replace").decode(),
        "X-Forenscope-Scale": f"{view.scale:.6f}",
        "Cache-Control": "private, max-age=3600",  # an id's image never changes
    }
    return Response(data, media_type=media, headers=headers)


@router.get("/analyses/{analysis_id}/inspect/full.jpg", **_IMAGE_ROUTE,
            summary="The image at full resolution (JPEG q95 4:4:4, at most 13 MP)")  # fmt: skip
async def full_image(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> Response:
    def encode(image: ImageInput) -> tuple[bytes, View]:
        view = full_view(image)
        buf = io.BytesIO()
        # Near-lossless (q95, no chroma subsampling) and a fraction of a PNG's size and time.
        Image.fromarray(np.ascontiguousarray(view.rgb)).save(buf, "JPEG", quality=95, subsampling=0)
        return buf.getvalue(), view

    (data, view), original = await _compute(svc, request, analysis_id, encode)
    return _picture(data, "image/jpeg", view, original)


@router.get("/analyses/{analysis_id}/inspect/ela.png", **_IMAGE_ROUTE,
            summary="Error level analysis at a chosen JPEG quality")  # fmt: skip
async def ela(
    analysis_id: AnalysisId, request: Request, svc: ServiceDep,
    quality: Annotated[int, Query(ge=MIN_ELA_QUALITY, le=MAX_ELA_QUALITY)] = 90,
) -> Response:  # fmt: skip
    view, original = await _compute(svc, request, analysis_id, lambda im: ela_view(im, quality))
    return _png(view, original)


@router.get("/analyses/{analysis_id}/inspect/noise.png", **_IMAGE_ROUTE,
            summary="Noise residual (luma minus its 3x3 median)")  # fmt: skip
async def noise(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> Response:
    view, original = await _compute(svc, request, analysis_id, noise_view)
    return _png(view, original)


@router.get("/analyses/{analysis_id}/inspect/gradient.png", **_IMAGE_ROUTE,
            summary="Luminance gradient (red/green = direction, blue = strength)")  # fmt: skip
async def gradient(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> Response:
    view, original = await _compute(svc, request, analysis_id, gradient_view)
    return _png(view, original)


@router.get("/analyses/{analysis_id}/inspect/jpeg", response_model=JpegPanel, **_JSON_ROUTE,
            summary="Quantisation tables, estimated quality and JPEG ghost curve")  # fmt: skip
async def jpeg(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> JpegPanel:
    panel, original = await _compute(svc, request, analysis_id, jpeg_panel)
    if not original:
        panel.notes.append(PREVIEW_NOTE)
    return panel  # type: ignore[no-any-return]


@router.get("/analyses/{analysis_id}/inspect/metadata", response_model=MetadataPanel,
            **_JSON_ROUTE, summary="EXIF, XMP, IPTC, C2PA tree, PNG text, ICC, thumbnail check",
            )  # fmt: skip
async def metadata(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> MetadataPanel:
    panel, original = await _compute(svc, request, analysis_id, metadata_panel)
    if not original:
        panel.notes.append(PREVIEW_NOTE)
    return panel  # type: ignore[no-any-return]


@router.get("/analyses/{analysis_id}/inspect/thumbnail.png", **_IMAGE_ROUTE,
            summary="The embedded EXIF thumbnail (404 when there is none)")  # fmt: skip
async def thumbnail(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> Response:
    thumb, _ = await _compute(svc, request, analysis_id, embedded_thumbnail)
    if thumb is None:
        raise HTTPException(404, "this image has no embedded thumbnail")
    buf = io.BytesIO()
    thumb.save(buf, "PNG")
    return Response(buf.getvalue(), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip


_UPLOAD_BODY = upload_body("file")


@router.post(
    "/inspect/metadata", response_model=MetadataPanel, responses=ERRORS,
    openapi_extra=_UPLOAD_BODY, dependencies=[Depends(limit_analyses)],
    summary="The metadata panel of an uploaded image, before (or without) an analysis: what the "
    "UI shows while the analysis runs; nothing is stored",
)  # fmt: skip
async def metadata_of_upload(request: Request, svc: ServiceDep) -> MetadataPanel:
    form = await request.form(max_files=1, max_fields=1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "multipart field 'file' with the image is required")
    data = await upload.read()
    name = display_name(upload.filename) or "upload"
    svc.analyzer.limits.check_bytes(len(data), name)
    if sniff_image(data) is None:
        raise UnsupportedMediaError(f"{name}: not an image of a supported format")
    probe_image(data, svc.analyzer.limits, name)  # over the memory budget: refused undecoded

    def read() -> MetadataPanel:
        return metadata_panel(load_image(data, limits=svc.analyzer.limits))

    async with _state(request).slots:
        return await svc.run_analysis(read)


@router.delete("/analyses/{analysis_id}", status_code=204, response_class=Response,
               **_JSON_ROUTE, summary="Delete an analysis: its row, chat, stored image and "
               "reports (kept while another analysis of the same bytes uses them)")  # fmt: skip
def delete_analysis(analysis_id: AnalysisId, request: Request, svc: ServiceDep) -> Response:
    row = get_row(svc, analysis_id)
    left = svc.store.delete_analysis(row.id)
    if left is None:
        raise HTTPException(404, "no analysis with this id")
    if left == 0:
        _state(request).images.drop((row.sha256, row.params_key))
        folder = svc.blobs.report_dir(row.sha256, row.params_key)  # validates both parts
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()  # objects/<ab>/<sha256>/ once no report of it is left
        except OSError:
            pass
    return Response(status_code=204)


@router.get("/search", response_model=AnalysisPage, **_JSON_ROUTE,
            summary="History entries by file name, URL or verdict text, or by sha256")  # fmt: skip
def search(
    svc: ServiceDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> AnalysisPage:
    rows = svc.store.find_analyses(q.strip() if q else None, sha256, limit)
    return AnalysisPage(items=[summary(r) for r in rows], total=len(rows), limit=limit, offset=0)
