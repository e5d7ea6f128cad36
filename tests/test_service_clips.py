"""Video clips through the service (issue 17), against a real `forenscope serve` process.

A clip the test writes with PyAV's encoder is uploaded as a job: it is detected by its bytes
(the name says .bin), analysed by the clip analysis in the worker process, and its item and
analysis carry the clip verdict (uncalibrated); the JSON and the HTML timeline report are
served. A truncated MP4 fails with a clear error and the next upload works. The byte limits
are per kind: a clip over the clip limit and an image over the image limit get a 413 that says
which limit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from video_fixtures import N, background, write_clip

pytest.importorskip("av")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from test_service_stages import Serve, follow, photo_jpeg

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    return write_clip(path, [background(t) for t in range(N)]).read_bytes()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("clips") / "data", ["--max-clip-mb", "1"])
    yield server
    server.close()


def test_a_clip_upload_runs_the_clip_analysis(serve: Serve, clip_bytes: bytes) -> None:
    job = serve.job(clip_bytes, "upload.bin")
    item = follow(serve, job["id"])[-1]
    assert item["status"] == "done", item
    assert item["kind"] == "clip" and item["calibrated"] is False
    assert item["label"] in ("real", "ai_generated", "tampered", "inconclusive")
    analysis = serve.http.get(f"/v1/analyses/{item['analysis_id']}").json()
    assert analysis["kind"] == "clip" and analysis["label"] == item["label"]
    report = analysis["report"]
    assert report["verdict"]["calibrated"] is False
    assert report["clip"]["frames"] == N and report["clip"]["width"] == 160
    assert report["clip"]["path"] is None  # the server's working path is not shown
    assert (analysis["width"], analysis["height"]) == (160, 120)
    assert analysis["links"]["image"] is None
    js = serve.http.get(analysis["links"]["report_json"])
    assert js.status_code == 200 and js.json()["verdict"] == report["verdict"]
    page = serve.http.get(analysis["links"]["report_html"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "timeline" in page.text.lower()
    # The UI frames it (same origin only); every other response may not be framed.
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert js.headers["x-frame-options"] == "DENY"
    listed = serve.http.get("/v1/analyses").json()["items"]
    assert any(a["id"] == analysis["id"] and a["kind"] == "clip" for a in listed)
    chat = serve.http.post(f"/v1/analyses/{analysis['id']}/chat", json={"message": "when?"})
    assert chat.status_code in (422, 501)


def test_a_truncated_mp4_fails_clearly_and_the_next_upload_works(
    serve: Serve, clip_bytes: bytes
) -> None:
    job = serve.job(clip_bytes[: len(clip_bytes) // 3], "cut.mp4")
    item = follow(serve, job["id"])[-1]
    assert item["status"] == "failed", item
    assert "Video" in item["error"] or "decod" in item["error"].lower(), item["error"]
    again = serve.job(photo_jpeg(), "next.jpg")
    done = follow(serve, again["id"])[-1]
    assert done["status"] == "done" and done["kind"] == "image" and done["calibrated"] is None


def test_each_kind_has_its_own_byte_limit(serve: Serve, clip_bytes: bytes) -> None:
    # The clip limit is 1 MB here: a clip padded past it is refused by the clip limit.
    big = clip_bytes + b"\0" * (1024 * 1024)
    resp = serve.http.post("/v1/jobs", files={"files": ("big.mp4", big)})
    assert resp.status_code == 413 and "clip limit of 1,048,576" in resp.json()["detail"]
    resp = serve.http.post("/v1/analyze", files={"file": ("big.mp4", big)})
    assert resp.status_code == 413 and "clip limit" in resp.json()["detail"]
    # Neither an image nor a clip: 415 naming both.
    resp = serve.http.post("/v1/jobs", files={"files": ("x.mp4", b"\0" * 4096)})
    assert resp.status_code == 415 and "video clip" in resp.json()["detail"]


def test_analyze_takes_a_clip_directly(serve: Serve, clip_bytes: bytes) -> None:
    resp = serve.http.post("/v1/analyze", files={"file": ("clip.mp4", clip_bytes)})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["kind"] == "clip" and body["report"]["verdict"]["calibrated"] is False


def test_a_clip_over_the_duration_limit_is_refused_before_decoding(
    tmp_path: Path, clip_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from forenscope.service import Settings, create_app

    monkeypatch.setenv("FORENSCOPE_VIDEO_MAX_DURATION_S", "0.5")  # the clip lasts 1.6 s
    settings = Settings(data_dir=tmp_path, experts=["exif", "ela"], isolation="thread",
                        analyze_rate_per_min=0.0)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        resp = client.post("/v1/analyze", files={"file": ("long.mp4", clip_bytes)})
        assert resp.status_code == 413, resp.text
        detail = resp.json()["detail"]
        assert "over the limit" in detail and "FORENSCOPE_VIDEO_MAX_DURATION_S" in detail
        assert client.get("/v1/analyses").json()["total"] == 0
