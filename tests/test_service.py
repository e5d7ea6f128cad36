"""API tests for every /v1 endpoint of the HTTP service (in-process, no network)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from fastapi.testclient import TestClient
from PIL import Image

from forenscope.forgeries import Box, make_splice, synthetic_photo
from forenscope.service import Settings, create_app
from forenscope.service.blobs import BlobStore
from forenscope.service.openapi import openapi_text
from forenscope.service.schemas import ChatMessage
from forenscope.service.store import Store
from forenscope.types import Report

ROOT = Path(__file__).resolve().parents[1]


def jpeg(seed: int = 0, size: tuple[int, int] = (96, 128), quality: int = 88) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(*size, seed=seed)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def spliced(seed: int = 0) -> bytes:
    base = synthetic_photo(160, 200, seed=seed)
    donor = synthetic_photo(160, 200, seed=seed + 100)
    return make_splice(base, donor, Box(60, 40, 70, 60), donor_noise=12.0).data


def settings(tmp: Path, **kw: Any) -> Settings:
    kw.setdefault("analyze_rate_per_min", 0.0)
    kw.setdefault("read_rate_per_s", 0.0)
    return Settings(data_dir=tmp, **kw)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as c:
        yield c


def upload(c: TestClient, data: bytes, name: str = "photo.jpg", **fields: str) -> Any:
    r = c.post("/v1/analyze", files={"file": (name, data, "image/jpeg")}, data=fields)
    assert r.status_code == 201, r.text
    return r.json()


def png_size(data: bytes) -> tuple[int, int, str]:
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG"
    return im.width, im.height, im.mode


def test_health_is_public_and_says_what_is_configured(client: TestClient) -> None:
    body = client.get("/v1/health").json()
    assert body["status"] == "ok"
    assert body["auth_required"] is False
    assert body["llm_configured"] is False


def test_experts_and_models_listing(client: TestClient) -> None:
    experts = client.get("/v1/experts").json()
    names = {e["spec"]["name"] for e in experts}
    assert {"ela", "exif", "noise"} <= names
    for e in experts:
        assert isinstance(e["available"], bool)
        assert e["available"] == (e["unavailable_reason"] is None)
    models = client.get("/v1/models").json()["models"]
    assert all("sha256" in m and "licence" in m for m in models)


def test_analyze_upload_returns_report_links_and_files(client: TestClient) -> None:
    a = upload(client, spliced(), name="../../evil/name.jpg")
    assert len(a["id"]) == 32 and a["source"] == "upload"
    assert a["filename"] == "name.jpg"  # a display label only, directories stripped
    report = Report.model_validate(a["report"])
    assert report.verdict.label == a["label"]
    assert report.image.width == 200 and report.image.height == 160
    assert a["probability"] == pytest.approx(report.verdict.probability)

    again = client.get(a["links"]["self"]).json()
    assert again["report"] == a["report"] and again["cached"] is False

    r = client.get(a["links"]["report_json"])
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert Report.model_validate_json(r.content).image.sha256 == a["sha256"]

    r = client.get(a["links"]["report_html"])
    assert r.status_code == 200 and r.text.lstrip().lower().startswith("<!doctype html")
    assert "sandbox" in r.headers["content-security-policy"]

    r = client.get(a["links"]["image"])
    preview = Image.open(io.BytesIO(r.content))
    assert r.headers["content-type"] == "image/jpeg" and preview.size == (200, 160)


def test_overlays_and_mask_are_pngs_per_expert(client: TestClient) -> None:
    a = upload(client, spliced())
    overlays = a["links"]["overlays"]
    with_maps = {e["expert"] for e in a["report"]["experts"] if e["has_heatmap"]}
    assert with_maps, "the default experts should produce at least one map"
    assert with_maps <= set(overlays)
    assert "fused" in overlays
    for url in overlays.values():
        r = client.get(url)
        assert r.status_code == 200, url
        w, h, mode = png_size(r.content)
        assert (w, h, mode) == (200, 160, "RGBA")
    if a["links"]["mask"]:
        w, h, mode = png_size(client.get(a["links"]["mask"]).content)
        assert mode == "L" and (w, h) == (200, 160)
    assert client.get(f"/v1/analyses/{a['id']}/overlays/nosuchexpert.png").status_code == 404


def test_same_bytes_reuse_the_stored_report(client: TestClient) -> None:
    data = jpeg(3)
    first, second = upload(client, data), upload(client, data)
    assert first["id"] != second["id"]
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["report"] == second["report"]
    other = upload(client, data, experts="exif")  # other options: another report
    assert other["cached"] is False
    assert [e["expert"] for e in other["report"]["experts"]] == ["exif"]


def test_unknown_expert_and_bad_threshold_are_422(client: TestClient) -> None:
    files = {"file": ("a.jpg", jpeg(), "image/jpeg")}
    r = client.post("/v1/analyze", files=files, data={"experts": "ela,nope"})
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    r = client.post("/v1/analyze", files=files, data={"threshold": "2"})
    assert r.status_code == 422
    r = client.post("/v1/analyze", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_history_is_paginated_newest_first(client: TestClient) -> None:
    ids = [
        upload(client, jpeg(seed), name=f"img{seed}.jpg", experts="exif")["id"] for seed in range(3)
    ]
    page = client.get("/v1/analyses", params={"limit": 2}).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == ids[::-1][:2]
    rest = client.get("/v1/analyses", params={"limit": 2, "offset": 2}).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]]
    assert client.get("/v1/analyses", params={"limit": 0}).status_code == 422


def test_unknown_id_is_404(client: TestClient) -> None:
    assert client.get("/v1/analyses/" + "0" * 32).status_code == 404
    assert client.get("/v1/jobs/" + "0" * 32).status_code == 404


def wait_job(c: TestClient, job_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "done":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_batch_job_of_uploads(client: TestClient) -> None:
    files = [("files", (f"b{i}.jpg", jpeg(10 + i), "image/jpeg")) for i in range(3)]
    r = client.post("/v1/jobs", files=files, data={"experts": "exif,ela"})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert (job["total"], job["done"], job["failed"]) == (3, 3, 0)
    assert [i["name"] for i in job["items"]] == ["b0.jpg", "b1.jpg", "b2.jpg"]
    for item in job["items"]:
        a = client.get(f"/v1/analyses/{item['analysis_id']}").json()
        assert a["job_id"] == job["id"] and a["source"] == "batch"
        assert {e["expert"] for e in a["report"]["experts"]} == {"exif", "ela"}


def test_batch_job_refuses_non_images_up_front(client: TestClient) -> None:
    files = [("files", ("ok.jpg", jpeg(), "image/jpeg")),
             ("files", ("evil.jpg", b"MZ\x90\x00 not an image", "image/jpeg"))]  # fmt: skip
    r = client.post("/v1/jobs", files=files)
    assert r.status_code == 415 and "evil.jpg" in r.json()["detail"]
    assert client.get("/v1/analyses").json()["total"] == 0


def test_batch_job_of_urls_records_refused_items(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"urls": ["http://127.0.0.1:9/a.jpg", "gopher://x/y"]})
    assert r.status_code == 202
    job = wait_job(client, r.json()["id"])
    assert (job["done"], job["failed"]) == (0, 2)
    assert all(i["error"] and "UrlRefused" in i["error"] for i in job["items"])


def test_chat_without_llm_is_501_with_a_clear_message(client: TestClient) -> None:
    a = upload(client, jpeg(), experts="exif")
    r = client.post(f"/v1/analyses/{a['id']}/chat", json={"message": "why?"})
    assert r.status_code == 501 and "LLM" in r.json()["detail"]
    assert client.get(f"/v1/analyses/{a['id']}/chat").json() == []


class EchoBackend:
    """A chat backend double: answers from the report it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def reply(
        self, report: Report, image_jpeg: bytes, history: Sequence[ChatMessage], question: str
    ) -> str:
        self.calls.append((question, len(history), len(image_jpeg)))
        return f"verdict {report.verdict.label}; you asked: {question}"


def test_chat_with_a_backend_is_stored_and_survives_restart(tmp_path: Path) -> None:
    backend = EchoBackend()
    with TestClient(create_app(settings(tmp_path), chat_backend=backend)) as c:
        assert c.get("/v1/health").json()["llm_configured"] is True
        a = upload(c, jpeg(), experts="exif")
        url = f"/v1/analyses/{a['id']}/chat"
        first = c.post(url, json={"message": "is it real?"}).json()
        assert first["reply"] == f"verdict {a['label']}; you asked: is it real?"
        second = c.post(url, json={"message": "where?"}).json()
        assert [m["role"] for m in second["messages"]] == ["user", "assistant"] * 2
        assert c.post(url, json={"message": ""}).status_code == 422
    assert backend.calls[0][1] == 0 and backend.calls[1][1] == 2  # history grows
    assert backend.calls[0][2] > 100  # the preview image was handed over
    with TestClient(create_app(settings(tmp_path))) as c:
        history = c.get(f"/v1/analyses/{a['id']}/chat").json()
        assert [m["content"] for m in history][0] == "is it real?" and len(history) == 4


def test_analyses_survive_a_restart(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path))) as c:
        a = upload(c, spliced(5))
    with TestClient(create_app(settings(tmp_path))) as c:
        again = c.get(f"/v1/analyses/{a['id']}").json()
        assert again["report"] == a["report"]
        assert c.get("/v1/analyses").json()["items"][0]["id"] == a["id"]
        assert c.get(a["links"]["overlays"]["fused"]).status_code == 200
        assert upload(c, spliced(5))["cached"] is True
    files = list((tmp_path / "objects").rglob("report.json"))
    assert len(files) == 1 and a["sha256"] in str(files[0])  # content-addressed


def test_unfinished_job_resumes_after_restart(tmp_path: Path) -> None:
    # What a process killed mid-batch leaves behind: a recorded job whose items never ran.
    store, blobs = Store(tmp_path / "forenscope.sqlite3"), BlobStore(tmp_path)
    refs = [blobs.stage(jpeg(20 + i)) for i in range(2)]
    store.add_job("ab" * 16, [(f"r{i}.jpg", "upload", ref) for i, ref in enumerate(refs)],
                  json.dumps({"experts": ["exif"], "threshold": None}))  # fmt: skip
    store.set_item("ab" * 16, 0, "running")
    store.close()
    with TestClient(create_app(settings(tmp_path))) as c:
        job = wait_job(c, "ab" * 16)
        assert (job["done"], job["failed"]) == (2, 0)


def test_metrics_count_requests_latencies_and_analyses(client: TestClient) -> None:
    upload(client, jpeg(), experts="exif")
    client.get("/v1/analyses")
    text = client.get("/v1/metrics").text
    post = 'method="POST",route="/v1/analyze"'
    assert f'forenscope_http_requests_total{{{post},status="201"}} 1' in text
    assert f"forenscope_http_request_duration_seconds_count{{{post}}} 1" in text
    assert 'le="+Inf"' in text
    assert "forenscope_analyses_total{label=" in text
    assert "forenscope_stored_analyses 1" in text


def test_ui_is_served_without_external_resources(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="drop"' in page.text
    for asset in ("/ui/app.js", "/ui/app.css"):
        assert client.get(asset).status_code == 200
    combined = page.text + client.get("/ui/app.js").text + client.get("/ui/app.css").text
    assert "http://" not in combined and "https://" not in combined.replace("(https://...)", "")
    assert ".innerHTML" not in client.get("/ui/app.js").text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_openapi_matches_the_committed_document(client: TestClient) -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert openapi_text() == committed, (
        "docs/openapi.json is stale: python -m forenscope.service.openapi docs/openapi.json"
    )
    served = client.get("/v1/openapi.json").json()
    assert served == json.loads(committed)
    paths = served["paths"]
    one = "/v1/analyses/{analysis_id}"
    for path in ("/v1/analyze", "/v1/analyses", one, "/v1/jobs", "/v1/jobs/{job_id}",
                 "/v1/experts", "/v1/models", "/v1/health", "/v1/metrics", f"{one}/chat",
                 f"{one}/overlays/{{name}}.png", f"{one}/mask.png", f"{one}/report.html",
                 f"{one}/report.json", f"{one}/image.jpg"):  # fmt: skip
        assert path in paths, path
    assert "Report" in served["components"]["schemas"]  # the library's own type


def test_image_size_in_preview_is_bounded(client: TestClient) -> None:
    big = jpeg(1, size=(900, 1800))
    a = upload(client, big, experts="exif")
    preview = Image.open(io.BytesIO(client.get(a["links"]["image"]).content))
    assert max(preview.size) == 1600
    assert np.asarray(preview).std() > 5  # a picture, not a blank
