"""/v1/analyze and /v1/analyses/...: run, list and fetch analyses and their files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from .deps import (
    AnalysisId,
    ArtefactName,
    Service,
    ServiceDep,
    get_row,
    limit_analyses,
    limit_reads,
)
from .engine import HEAD_PROBE_BYTES, StoredAnalysis
from .schemas import (
    Analysis,
    AnalysisLinks,
    AnalysisPage,
    AnalysisSummary,
    AnalyzeUrlRequest,
    ErrorBody,
    upload_body,
)
from .store import AnalysisRow

router = APIRouter()
MAX_OFFSET = 1_000_000_000
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; frame-ancestors 'self'"
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 422, 429, 502, 503)
}

_ANALYZE_BODY = upload_body("file", params=True, json_model="AnalyzeUrlRequest")


def links(svc: Service, row: AnalysisRow) -> AnalysisLinks:
    base = f"/v1/analyses/{row.id}"
    names = svc.analyzer.overlay_names(row)
    overlays = {n: f"{base}/overlays/{n}.png" for n in names}
    for name in ("fused", "mask"):
        if svc.blobs.artefact(row.sha256, row.params_key, f"overlay.{name}.png"):
            overlays.setdefault(name, f"{base}/overlays/{name}.png")
    has_mask = svc.blobs.artefact(row.sha256, row.params_key, "report.mask.png") is not None
    image = f"{base}/image.jpg" if row.kind != "clip" else None
    return AnalysisLinks(
        self=base, report_json=f"{base}/report.json", report_html=f"{base}/report.html",
        image=image, mask=f"{base}/mask.png" if has_mask else None,
        overlays=overlays,
    )  # fmt: skip


def summary(row: AnalysisRow) -> AnalysisSummary:
    return AnalysisSummary.model_validate(row, from_attributes=True)


def full(svc: Service, row: AnalysisRow, cached: bool = False) -> Analysis:
    report = svc.analyzer.read_kind_report(row.sha256, row.params_key, row.kind)
    return Analysis(**summary(row).model_dump(), cached=cached, links=links(svc, row),
                    report=report)  # fmt: skip


def _split(value: object) -> list[str] | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _threshold(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        t = float(str(value))
    except ValueError:
        raise HTTPException(422, "threshold must be a number in [0, 1]") from None
    if not 0.0 <= t <= 1.0:
        raise HTTPException(422, "threshold must be a number in [0, 1]")
    return t


async def _from_upload(svc: Service, request: Request) -> StoredAnalysis:
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "multipart field 'file' with the image or clip is required")
    svc.analyzer.refuse_over_budget(await upload.read(HEAD_PROBE_BYTES))  # before all of it
    await upload.seek(0)
    data = await upload.read()
    return await svc.run_analysis(
        lambda: svc.analyzer.analyze_bytes(
            data, filename=upload.filename, source="upload",
            experts=_split(form.get("experts")), threshold=_threshold(form.get("threshold")),
        )
    )  # fmt: skip


async def _from_url(svc: Service, request: Request) -> StoredAnalysis:
    try:
        body = AnalyzeUrlRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise HTTPException(422, f"invalid request: {exc.errors(include_url=False)}") from None
    names = svc.analyzer.check_experts(body.experts)  # refuse a bad list before any fetch
    data, final = await svc.fetch(body.url)
    return await svc.run_analysis(
        lambda: svc.analyzer.analyze_bytes(
            data, filename=final.rsplit("/", 1)[-1].split("?")[0], source="url", url=final,
            experts=names, threshold=body.threshold,
        )
    )  # fmt: skip


@router.post(
    "/analyze", status_code=201, response_model=Analysis, responses=ERRORS,
    openapi_extra=_ANALYZE_BODY, dependencies=[Depends(limit_analyses)],
    summary="Analyse an uploaded image or video clip (multipart 'file') or an image URL (JSON "
    "{'url': ...})",
)  # fmt: skip
async def analyze(request: Request, svc: ServiceDep) -> Analysis:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        outcome = await _from_upload(svc, request)
    elif ctype == "application/json":
        outcome = await _from_url(svc, request)
    else:
        raise HTTPException(415, "send multipart/form-data with a 'file', or JSON with a 'url'")
    return full(svc, outcome.row, outcome.cached)


@router.get(
    "/analyses", response_model=AnalysisPage, dependencies=[Depends(limit_reads)],
    summary="History of analyses, newest first",
)  # fmt: skip
def list_analyses(
    svc: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AnalysisPage:
    if offset > MAX_OFFSET:  # SQLite integers are 64-bit: 2**63 would overflow into a 500
        raise HTTPException(400, f"offset must be at most {MAX_OFFSET:,}")
    rows, total = svc.store.list_analyses(min(limit, svc.settings.history_page_max), offset)
    return AnalysisPage(items=[summary(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/analyses/{analysis_id}", response_model=Analysis, responses=ERRORS,
    dependencies=[Depends(limit_reads)], summary="One analysis with its full report",
)  # fmt: skip
def get_analysis(analysis_id: AnalysisId, svc: ServiceDep) -> Analysis:
    return full(svc, get_row(svc, analysis_id))


def _file(
    svc: Service, row: AnalysisRow, name: str, media: str, headers: dict[str, str] | None = None
) -> Response:
    path = svc.blobs.artefact(row.sha256, row.params_key, name)
    if path is None:
        raise HTTPException(404, "this analysis has no such file")
    return FileResponse(path, media_type=media, headers=headers)


_FILE_ROUTE: dict[str, Any] = {
    "dependencies": [Depends(limit_reads)], "responses": ERRORS, "response_class": Response,
}  # fmt: skip


@router.get("/analyses/{analysis_id}/report.json", summary="The report JSON", **_FILE_ROUTE)
def report_json(analysis_id: AnalysisId, svc: ServiceDep) -> Response:
    row = get_row(svc, analysis_id)
    disposition = f'attachment; filename="forenscope-{row.id}.json"'
    return _file(svc, row, "report.json", "application/json", {"Content-Disposition": disposition})


@router.get("/analyses/{analysis_id}/report.html", summary="Self-contained HTML report",
            **_FILE_ROUTE)  # fmt: skip
def report_html(analysis_id: AnalysisId, svc: ServiceDep) -> Response:
    row = get_row(svc, analysis_id)
    # The UI frames a clip's timeline report (same origin only); sandboxed, it has no origin.
    headers = {"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return _file(svc, row, "report.html", "text/html; charset=utf-8", headers)


@router.get("/analyses/{analysis_id}/image.jpg", summary="Re-encoded preview of the image",
            **_FILE_ROUTE)  # fmt: skip
def image(analysis_id: AnalysisId, svc: ServiceDep) -> Response:
    return _file(svc, get_row(svc, analysis_id), "preview.jpg", "image/jpeg")


@router.get("/analyses/{analysis_id}/mask.png", summary="Fused mask (255 = suspicious)",
            **_FILE_ROUTE)  # fmt: skip
def mask(analysis_id: AnalysisId, svc: ServiceDep) -> Response:
    return _file(svc, get_row(svc, analysis_id), "report.mask.png", "image/png")


@router.get(
    "/analyses/{analysis_id}/overlays/{name}.png",
    summary="RGBA overlay: an expert's map, 'fused' (fused map) or 'mask' (mask outline)",
    **_FILE_ROUTE,
)
def overlay(analysis_id: AnalysisId, name: ArtefactName, svc: ServiceDep) -> Response:
    row = get_row(svc, analysis_id)
    if name in ("fused", "mask"):
        return _file(svc, row, f"overlay.{name}.png", "image/png")
    if name not in svc.analyzer.overlay_names(row):  # names come from the stored index only
        raise HTTPException(404, "no overlay with this name for this analysis")
    return _file(svc, row, f"overlay.expert.{name}.png", "image/png")
