"""Staged results, cancel and re-upload detection of the service's jobs (issues 13 and 15).

The stage log is checked on its own (a real analysis written into a folder, then read back),
then against a real `forenscope serve` process with worker processes: a job's stages arrive
while it runs (metadata first, the verdict after every expert, the maps last), DELETE stops a
running analysis (its worker is replaced, the next job runs, its upload is deleted), and
`reuse` answers a re-upload with the earlier analysis without a new history entry.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import abuse_fixtures as fx
from forenscope.forgeries import example_photo
from forenscope.io.limits import Limits

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from forenscope.service.stages import PROGRESS_FILE, read_stages, staged_overlay  # noqa: E402
from forenscope.service.workers import analyze_into  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")
EXPERTS = ["exif", "c2pa", "ela", "noise", "copy_move"]


def photo_jpeg(scale: int = 1, quality: int = 90, flip: bool = False) -> bytes:
    """The example photo tiled `scale` x `scale` times (scale 3: 3072 x 2304, 7 MP)."""
    rgb = np.tile(example_photo(), (scale, scale, 1))
    buf = io.BytesIO()
    Image.fromarray(rgb[::-1] if flip else rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_the_stage_log_of_a_real_analysis_reads_back_in_order(tmp_path: Path) -> None:
    analyze_into(photo_jpeg(), Limits(), EXPERTS, 0.5, 1, str(tmp_path))
    with (tmp_path / PROGRESS_FILE).open("a") as fh:
        fh.write('{"stage": "map", "name": "half-writ')  # a line being written is skipped
    stages = read_stages(tmp_path, time.monotonic() - 1.0)
    assert stages.metadata is not None and stages.metadata.width == 1024
    assert "No C2PA" in stages.metadata.c2pa.summary or stages.metadata.c2pa is not None
    assert stages.experts_total == len(EXPERTS)
    assert sorted(e.expert for e in stages.experts) == sorted(EXPERTS)
    assert stages.verdict is not None and stages.verdict_at_s is not None
    assert stages.metadata_at_s is not None
    assert stages.metadata_at_s <= min(e.at_s for e in stages.experts)
    assert max(e.at_s for e in stages.experts) <= stages.verdict_at_s
    assert stages.maps[:2] == ["fused", "mask"] and "ela" in stages.maps
    assert stages.elapsed_s >= 1.0
    # Only maps logged as written are served, and only from inside the folder.
    fused = staged_overlay(tmp_path, "fused")
    assert fused is not None and Image.open(io.BytesIO(fused)).size == (800, 600)
    assert staged_overlay(tmp_path, "ela") == (tmp_path / "overlay.expert.ela.png").read_bytes()
    (tmp_path / "overlay.expert.unlogged.png").write_bytes(fused)
    for name in ("unlogged", "../fused", "..", "ELA", "fused.png", "", "exif"):
        assert staged_overlay(tmp_path, name) is None, name
    assert staged_overlay(tmp_path / "moved-away", "fused") is None


class Serve:
    """`python -m forenscope serve` (worker processes, one analysis slot) on a free port."""

    def __init__(self, data_dir: Path, extra: list[str] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        cmd = [sys.executable, "-m", "forenscope", "serve", "--port", str(port), "--workers", "1"]
        cmd += ["--data-dir", str(data_dir), "--memory-budget-mb", "2048"]
        for name in EXPERTS:
            cmd += ["--expert", name]
        cmd += extra or []
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("FORENSCOPE_TOKEN", None)
        self.data_dir = data_dir
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "forenscope serve exited"
            try:
                if self.http.get("/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("forenscope serve did not start")

    def job(self, data: bytes, name: str, **fields: str) -> dict[str, Any]:
        resp = self.http.post("/v1/jobs", files={"files": (name, data)}, data=fields)
        assert resp.status_code == 202, resp.text
        return dict(resp.json())

    def status(self, job_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/jobs/{job_id}").json())

    def staged_files(self) -> list[str]:
        return sorted(p.name for p in (self.data_dir / "staging").iterdir())

    def close(self) -> None:
        self.http.close()
        fx.stop_process(self.proc)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("stages") / "data")
    yield server
    server.close()


def follow(serve: Serve, job_id: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Every distinct snapshot of the job's only item until it is no longer running."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = serve.status(job_id)["items"][0]
        if not seen or item != seen[-1]:
            seen.append(item)
        if item["status"] not in ("queued", "running"):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_a_jobs_stages_arrive_while_it_runs(serve: Serve) -> None:
    job = serve.job(photo_jpeg(scale=2), "staged.jpg")
    seen = follow(serve, job["id"])
    assert seen[-1]["status"] == "done" and seen[-1]["stages"] is None
    running = [s["stages"] for s in seen if s["status"] == "running" and s["stages"]]
    # Metadata came before the verdict, and some snapshot had experts still to come.
    early = [s for s in running if s["metadata"] and s["verdict"] is None]
    assert early, running[-3:]
    assert early[0]["metadata"]["width"] == 2048
    assert any(0 < len(s["experts"]) < len(EXPERTS) for s in running), running[-3:]
    assert any(s["verdict"] is not None for s in running)
    analysis = serve.http.get(f"/v1/analyses/{seen[-1]['analysis_id']}").json()
    last = running[-1]
    if last["verdict"] is not None:  # the verdict staged is the report's
        assert last["verdict"]["label"] == analysis["report"]["verdict"]["label"]


def test_cancel_stops_a_running_analysis_and_the_next_one_runs(serve: Serve) -> None:
    (worker,) = fx.settled_workers(serve.proc.pid, 1)
    job = serve.job(photo_jpeg(scale=4, quality=85), "slow.jpg")  # 16 MP: many seconds
    deadline = time.monotonic() + 60
    while (item := serve.status(job["id"])["items"][0])["status"] != "running" or not (
        item["stages"] and item["stages"]["metadata"]
    ):
        assert time.monotonic() < deadline, item
        time.sleep(0.02)
    assert item["sha256"] in serve.staged_files()
    start = time.monotonic()
    resp = serve.http.delete(f"/v1/jobs/{job['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled"
    assert resp.json()["items"][0]["status"] == "cancelled"
    assert time.monotonic() - start < 5.0
    assert not fx.alive(worker), "the cancelled analysis's worker was not stopped"
    assert serve.staged_files() == []  # its upload is gone at once
    total = serve.http.get("/v1/analyses").json()["total"]
    after = serve.job(photo_jpeg(flip=True), "next.jpg")
    assert follow(serve, after["id"])[-1]["status"] == "done"
    assert serve.http.get("/v1/analyses").json()["total"] == total + 1
    (replacement,) = fx.settled_workers(serve.proc.pid, 1)
    assert replacement != worker
    assert serve.http.delete("/v1/jobs/" + "0" * 32).status_code == 404


def test_a_reupload_with_reuse_opens_the_earlier_analysis(serve: Serve) -> None:
    data = photo_jpeg(quality=80)
    first = serve.job(data, "again.jpg", reuse="true")
    assert first["items"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    done = follow(serve, first["id"])[-1]
    assert done["status"] == "done" and not done["reused"]
    total = serve.http.get("/v1/analyses").json()["total"]
    second = serve.job(data, "again-renamed.jpg", reuse="1")
    item = second["items"][0]
    assert second["status"] == "done" and item["reused"]
    assert item["analysis_id"] == done["analysis_id"]
    assert serve.http.get("/v1/analyses").json()["total"] == total
    assert serve.staged_files() == []
    # Without reuse (or with other parameters) the same bytes are a new analysis.
    third = serve.job(data, "again.jpg", threshold="0.6", reuse="true")
    assert third["items"][0]["status"] != "done" or not third["items"][0]["reused"]
    assert follow(serve, third["id"])[-1]["analysis_id"] != done["analysis_id"]


def test_a_running_items_maps_are_served_as_written(serve: Serve) -> None:
    job = serve.job(photo_jpeg(scale=4, quality=85), "maps.jpg")  # 4096 x 3072: many seconds
    base = f"/v1/jobs/{job['id']}/items/0/overlays"
    assert serve.http.get(f"{base}/fused.png").status_code == 404  # not written yet
    served: dict[str, bytes] = {}
    deadline = time.monotonic() + 120
    while (item := serve.status(job["id"])["items"][0])["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, item
        urls = (item["stages"] or {}).get("overlays", {})
        if urls:
            assert list(urls) == item["stages"]["maps"] and list(urls)[0] == "fused"
            assert urls["fused"] == f"{base}/fused.png"
        for name, url in urls.items():
            if name not in served and (resp := serve.http.get(url)).status_code == 200:
                assert resp.headers["content-type"] == "image/png"
                served[name] = resp.content
        time.sleep(0.02)
    assert item["status"] == "done" and item["stages"] is None
    assert "fused" in served, "the fused map was never served while the item ran"
    assert Image.open(io.BytesIO(served["fused"])).size == (800, 600)
    # Done: the staged URLs are gone and the stored analysis serves the same maps.
    assert serve.http.get(f"{base}/fused.png").status_code == 404
    links = serve.http.get(f"/v1/analyses/{item['analysis_id']}").json()["links"]["overlays"]
    for name, png in served.items():
        assert serve.http.get(links[name]).content == png, name
    for bad in ("..%2F..%2Fforenscope.sqlite3", "..%2Freport.json", "ELA", "%2e%2e",
                "fused.png%00", "a" * 65):  # fmt: skip
        resp = serve.http.get(f"{base}/{bad}.png")
        assert resp.status_code in (400, 404, 422), bad
        assert b"SQLite" not in resp.content and b'"verdict"' not in resp.content
    for url in (f"/v1/jobs/{job['id']}/items/1/overlays/fused.png",
                f"/v1/jobs/{job['id']}/items/-1/overlays/fused.png",
                f"/v1/jobs/{'0' * 32}/items/0/overlays/fused.png",
                f"/v1/jobs/{job['id'][:-1]}g/items/0/overlays/fused.png"):  # fmt: skip
        assert serve.http.get(url).status_code in (404, 422), url


def test_a_staged_map_needs_the_token_like_every_route(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from forenscope.service.app import create_app
    from forenscope.service.settings import Settings

    token = "staged-map-token-5678"
    s = Settings(data_dir=tmp_path, token=token, warm_up=False, experts=["exif"])
    url = f"/v1/jobs/{'0' * 32}/items/0/overlays/fused.png"
    with TestClient(create_app(s)) as c:
        resp = c.get(url)
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
        assert c.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 404
