"""/v1 health, metrics, experts, models, batch jobs and chat."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from .. import __version__
from ..io.image import probe_image
from .chat import CHAT_NOT_CONFIGURED
from .deps import (
    AnalysisId,
    ArtefactName,
    Service,
    ServiceDep,
    get_row,
    limit_analyses,
    limit_reads,
)
from .engine import HEAD_PROBE_BYTES, display_name
from .routes_analyses import ERRORS, _split, _threshold
from .schemas import (
    ChatMessage,
    ChatReply,
    ChatRequest,
    ErrorBody,
    ExpertInfo,
    Health,
    Job,
    JobItem,
    JobRequest,
    ModelList,
    upload_body,
)
from .store import AnalysisRow

public = APIRouter()
router = APIRouter()
MAX_JOB_FILES = 100
CANCEL_SETTLE_S = 5.0  # DELETE /v1/jobs/{id} waits this long for running items to stop

CLIP_CHAT = (
    "chat about a clip is not in the service yet; use `forenscope chat CLIP` on the command line"
)
_JOB_BODY = upload_body("files", many=True, params=True, json_model="JobRequest")


@public.get("/health", response_model=Health, summary="Liveness; no token needed")
async def health(svc: ServiceDep) -> Health:  # async: answers even when every thread is busy
    return Health(
        version=__version__,
        auth_required=bool(svc.settings.token_value),
        llm_configured=svc.chat_backend is not None,
    )


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
def metrics(svc: ServiceDep) -> PlainTextResponse:
    text = svc.metrics.render(
        stored_analyses=svc.store.count_analyses(),
        busy=svc.analyzer.busy,
        pending=svc.analyzer.pending,
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/experts", response_model=list[ExpertInfo], dependencies=[Depends(limit_reads)])
def experts() -> list[ExpertInfo]:
    from ..experts import expert_classes

    out = []
    for _name, cls in sorted(expert_classes().items()):
        reason = cls().available()
        out.append(ExpertInfo(spec=cls.spec, available=reason is None, unavailable_reason=reason))
    return out


@router.get("/models", response_model=ModelList, dependencies=[Depends(limit_reads)])
def models() -> ModelList:
    from ..models.registry import list_models

    return ModelList(models=[dict(m) for m in list_models()])


@router.post(
    "/jobs", status_code=202, response_model=Job, responses=ERRORS, openapi_extra=_JOB_BODY,
    dependencies=[Depends(limit_analyses)],
    summary="Queue a batch: multipart 'files' (several) or JSON {'urls': [...]}",
)  # fmt: skip
async def create_job(request: Request, svc: ServiceDep) -> Job:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    staged: list[str] = []
    try:
        if ctype == "multipart/form-data":
            form = await request.form(max_files=MAX_JOB_FILES, max_fields=4)
            # The options first: a request refused for them stages nothing.
            experts, threshold = _split(form.get("experts")), _threshold(form.get("threshold"))
            reuse = str(form.get("reuse") or "").lower() in ("1", "true", "yes", "on")
            svc.analyzer.check_experts(experts)
            entries: list[tuple[str | None, str, str]] = []
            for upload in form.getlist("files"):
                if not isinstance(upload, UploadFile):
                    continue
                name = display_name(upload.filename) or "upload"
                # An image over the budget is refused by its header, before it is read whole.
                svc.analyzer.refuse_over_budget(await upload.read(HEAD_PROBE_BYTES), name)
                await upload.seek(0)
                data = await upload.read()
                # Refused at once rather than failed later: neither an image nor a clip (415),
                # or over its kind's byte limit (413), or an image over the pixel limits.
                kind = await anyio.to_thread.run_sync(svc.analyzer.media_kind, data, name)
                if kind == "image":
                    probe_image(data, svc.analyzer.limits, name)
                sha, created = await anyio.to_thread.run_sync(svc.blobs.stage_new, data)
                if created:
                    staged.append(sha)
                entries.append((display_name(upload.filename), "upload", sha))
            if not entries:
                raise HTTPException(
                    422, "multipart field 'files' with at least one image or clip is required"
                )
        elif ctype == "application/json":
            try:
                body = JobRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                msg = f"invalid request: {exc.errors(include_url=False)}"
                raise HTTPException(422, msg) from None
            entries = [
                (u.split("?")[0].rsplit("/", 1)[-1][:200] or None, "url", u) for u in body.urls
            ]
            experts, threshold, reuse = body.experts, body.threshold, False
        else:
            raise HTTPException(415, "send multipart/form-data with 'files', or JSON with 'urls'")
        names = svc.analyzer.check_experts(experts)
        reused = svc.analyzer.analysed_before(entries, names, threshold) if reuse else {}
        job_id = svc.jobs.submit(entries, names, threshold, reused)
        if reused:  # their bytes are stored with the earlier analysis already
            refs = [entries[i][2] for i in reused]
            svc.blobs.unstage(refs, keep=svc.store.staged_refs_in_use())
    except BaseException:
        # A refused request must not leave its uploads on disk (unless a live job shares them).
        if staged:
            svc.blobs.unstage(staged, keep=svc.store.staged_refs_in_use())
        raise
    return job_status(job_id, svc)


@router.get("/jobs/{job_id}", response_model=Job, responses=ERRORS,
            dependencies=[Depends(limit_reads)])  # fmt: skip
def get_job(job_id: AnalysisId, svc: ServiceDep) -> Job:
    return job_status(job_id, svc)


@router.delete(
    "/jobs/{job_id}", response_model=Job, responses=ERRORS,
    dependencies=[Depends(limit_reads)],
    summary="Cancel a job: its queued items are dropped, a running analysis is stopped (its "
    "worker process is replaced) and its uploads are deleted; answers once they are settled",
)  # fmt: skip
async def cancel_job(job_id: AnalysisId, svc: ServiceDep) -> Job:
    if not svc.jobs.cancel(job_id):
        raise HTTPException(404, "no job with this id")
    deadline = anyio.current_time() + CANCEL_SETTLE_S
    job = job_status(job_id, svc)
    while job.status in ("queued", "running") and anyio.current_time() < deadline:
        await anyio.sleep(0.05)  # a killed worker is noticed within milliseconds
        job = job_status(job_id, svc)
    return job


@router.get(
    "/jobs/{job_id}/items/{index}/overlays/{name}.png", response_class=Response,
    responses=ERRORS, dependencies=[Depends(limit_reads)],
    summary="A map a running item has written so far (items[].stages.overlays); 404 before it "
    "is written and once the item is done: its analysis serves the maps from then on",
)  # fmt: skip
def staged_overlay(
    job_id: AnalysisId, index: Annotated[int, Path(ge=0, lt=MAX_JOB_FILES)],
    name: ArtefactName, svc: ServiceDep,
) -> Response:  # fmt: skip
    if svc.store.get_item(job_id, index) is None:
        raise HTTPException(404, "no job item with this id and index")
    png = svc.jobs.staged_overlay(job_id, index, name)
    if png is None:
        raise HTTPException(404, "this item has no such map now (not written yet, or done)")
    # The bytes, not the file: the working folder is renamed into the store when it is done.
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def job_status(job_id: str, svc: Service) -> Job:
    found = svc.store.get_job(job_id)
    if found is None:
        raise HTTPException(404, "no job with this id")
    created, updated, rows = found
    own = svc.store.analyses_of_job(job_id) if any(r.status == "done" for r in rows) else set()
    done_rows = {r.analysis_id: svc.store.get_analysis(r.analysis_id) for r in rows
                 if r.status == "done" and r.analysis_id}  # fmt: skip
    items = [
        JobItem(
            index=r.idx,
            name=r.name,
            status=r.status,
            analysis_id=r.analysis_id,
            error=r.error,
            sha256=r.ref if r.kind == "upload" else None,
            reused=r.status == "done" and r.analysis_id not in own,
            stages=svc.jobs.stages(job_id, r.idx) if r.status == "running" else None,
            **_outcome(done_rows.get(r.analysis_id or "")),
        )  # fmt: skip
        for r in rows
    ]
    done = sum(i.status == "done" for i in items)
    failed = sum(i.status == "failed" for i in items)
    cancelled = sum(i.status == "cancelled" for i in items)
    finished = done + failed + cancelled == len(items)
    started = any(i.status != "queued" for i in items)
    status = "cancelled" if finished and cancelled else "done" if finished else (
        "running" if started else "queued")  # fmt: skip
    return Job(id=job_id, status=status, created_at=created, updated_at=updated,
               total=len(items), done=done, failed=failed, items=items)  # fmt: skip


def _outcome(row: AnalysisRow | None) -> dict[str, Any]:
    """A done item's kind and verdict (a clip's verdict is uncalibrated, as its report says)."""
    if row is None:
        return {}
    return {"kind": row.kind, "label": row.label, "probability": row.probability,
            "calibrated": False if row.kind == "clip" else None}  # fmt: skip


def _messages(svc: Service, analysis_id: str) -> list[ChatMessage]:
    return [
        ChatMessage(role=role, content=content, created_at=at)
        for role, content, at in svc.store.chat_history(analysis_id)
    ]


@router.get("/analyses/{analysis_id}/chat", response_model=list[ChatMessage],
            responses=ERRORS, dependencies=[Depends(limit_reads)])  # fmt: skip
def chat_history(analysis_id: AnalysisId, svc: ServiceDep) -> list[ChatMessage]:
    get_row(svc, analysis_id)
    return _messages(svc, analysis_id)


@router.post(
    "/analyses/{analysis_id}/chat", response_model=ChatReply,
    dependencies=[Depends(limit_analyses)], responses={**ERRORS, 501: {"model": ErrorBody}},
    summary="Ask a follow-up question about an analysis (501 when no LLM is configured)",
)  # fmt: skip
async def chat(analysis_id: AnalysisId, body: ChatRequest, svc: ServiceDep) -> ChatReply:
    row = get_row(svc, analysis_id)
    backend = svc.chat_backend
    if backend is None:
        raise HTTPException(501, CHAT_NOT_CONFIGURED)
    if row.kind == "clip":
        raise HTTPException(422, CLIP_CHAT)
    report = svc.analyzer.read_report(row.sha256, row.params_key)
    preview = svc.blobs.artefact(row.sha256, row.params_key, "preview.jpg")
    image = preview.read_bytes() if preview else b""
    history = _messages(svc, analysis_id)
    answer = await anyio.to_thread.run_sync(
        lambda: backend.reply(report, image, history, body.message)
    )
    svc.store.add_chat(analysis_id, "user", body.message)
    svc.store.add_chat(analysis_id, "assistant", answer)
    return ChatReply(reply=answer, messages=_messages(svc, analysis_id))
