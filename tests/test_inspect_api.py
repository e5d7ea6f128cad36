"""The inspect routes of the service: layers and panels of a stored analysis, delete, search."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from fastapi.testclient import TestClient
from PIL import Image

from forenscope.forgeries import synthetic_photo
from forenscope.service import Settings, create_app
from provenance_fixtures import jpeg_bytes

EXPERTS = "ela,exif"  # fast experts: these tests are about the inspect routes


def photo_jpeg(seed: int = 0, quality: int = 80) -> bytes:
    return jpeg_bytes(synthetic_photo(120, 160, seed=seed), tags={0x0131: "GIMP 2.10"},
                      quality=quality)  # fmt: skip


def make_client(tmp: Path, **kw: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp, analyze_rate_per_min=0.0,
                                          read_rate_per_s=0.0, **kw)))  # fmt: skip


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def upload(c: TestClient, data: bytes, name: str = "photo.jpg") -> Any:
    r = c.post("/v1/analyze", files={"file": (name, data, "image/jpeg")},
               data={"experts": EXPERTS})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def test_layers_are_pngs_at_the_image_size_with_a_note(client: TestClient) -> None:
    a = upload(client, photo_jpeg())
    base = f"/v1/analyses/{a['id']}/inspect"
    full = client.get(f"{base}/full.jpg")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(full.content)).size == (160, 120)
    for name in ("ela.png?quality=75", "noise.png", "gradient.png"):
        r = client.get(f"{base}/{name}")
        assert r.status_code == 200, (name, r.text)
        assert Image.open(io.BytesIO(r.content)).size == (160, 120)
        assert r.headers["x-forenscope-scale"] == "1.000000"
        assert "preview" not in r.headers["x-forenscope-note"]
    assert "quality 75" in client.get(f"{base}/ela.png?quality=75").headers["x-forenscope-note"]
    q60 = client.get(f"{base}/ela.png?quality=60").content
    assert q60 != client.get(f"{base}/ela.png?quality=95").content
    for bad in ("quality=5", "quality=101", "quality=abc"):
        assert client.get(f"{base}/ela.png?{bad}").status_code == 422


def test_jpeg_and_metadata_panels(client: TestClient) -> None:
    a = upload(client, photo_jpeg(quality=80))
    base = f"/v1/analyses/{a['id']}/inspect"
    panel = client.get(f"{base}/jpeg").json()
    assert panel["is_jpeg"] and panel["estimated_quality"] == 80
    assert len(panel["tables"][0]["values"]) == 64 and len(panel["ghost"]) == 15
    meta = client.get(f"{base}/metadata").json()
    assert meta["exif"]["Software"] == "GIMP 2.10"
    assert meta["c2pa"]["present"] is False and meta["thumbnail"] is None
    assert client.get(f"{base}/thumbnail.png").status_code == 404


def test_bad_ids_and_unknown_analyses_are_refused(client: TestClient) -> None:
    assert client.get("/v1/analyses/../inspect/jpeg").status_code == 404
    assert client.get("/v1/analyses/NOTHEX/inspect/jpeg").status_code == 422
    assert client.get(f"/v1/analyses/{'0' * 32}/inspect/noise.png").status_code == 404
    assert client.delete(f"/v1/analyses/{'0' * 32}").status_code == 404


def test_delete_removes_the_row_the_chat_and_the_stored_files(
    client: TestClient, tmp_path: Path
) -> None:
    a = upload(client, photo_jpeg(seed=1))
    b = upload(client, photo_jpeg(seed=1))  # the same bytes: shares the stored report
    objects = tmp_path / "objects"
    assert list(objects.rglob("original.bin"))
    assert client.delete(f"/v1/analyses/{a['id']}").status_code == 204
    assert client.get(f"/v1/analyses/{a['id']}").status_code == 404
    assert client.get(f"/v1/analyses/{b['id']}/report.json").status_code == 200  # still used
    assert client.delete(f"/v1/analyses/{b['id']}").status_code == 204
    assert not list(objects.rglob("original.bin")) and not list(objects.rglob("preview.jpg"))
    assert client.get("/v1/analyses").json()["total"] == 0


def test_search_by_name_verdict_and_sha256(client: TestClient) -> None:
    a = upload(client, photo_jpeg(seed=2), "harbour_100%.jpg")
    upload(client, photo_jpeg(seed=3), "street.jpg")
    hits = client.get("/v1/search", params={"q": "harbour"}).json()["items"]
    assert [h["id"] for h in hits] == [a["id"]]
    assert client.get("/v1/search", params={"q": "_100%"}).json()["total"] == 1  # literal %
    assert client.get("/v1/search", params={"q": "nothing"}).json()["total"] == 0
    by_sha = client.get("/v1/search", params={"sha256": a["sha256"]}).json()["items"]
    assert [h["id"] for h in by_sha] == [a["id"]]
    assert client.get("/v1/search", params={"sha256": "xyz"}).status_code == 422
    assert client.get("/v1/search").json()["total"] == 2


def test_inspect_routes_need_the_token(tmp_path: Path) -> None:
    with make_client(tmp_path, token="s3cret") as c:
        assert c.get(f"/v1/analyses/{'0' * 32}/inspect/jpeg").status_code == 401
        assert c.get("/v1/search").status_code == 401
        assert c.delete(f"/v1/analyses/{'0' * 32}").status_code == 401
        ok = c.get("/v1/search", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_analyses_stored_before_uploads_were_kept_use_the_preview(
    client: TestClient, tmp_path: Path
) -> None:
    a = upload(client, photo_jpeg(seed=4))
    for path in (tmp_path / "objects").rglob("original.bin"):
        path.unlink()
    r = client.get(f"/v1/analyses/{a['id']}/inspect/noise.png")
    assert r.status_code == 200 and "preview" in r.headers["x-forenscope-note"]
    assert any(
        "preview" in n for n in client.get(f"/v1/analyses/{a['id']}/inspect/jpeg").json()["notes"]
    )


def test_metadata_of_an_upload_before_any_analysis(client: TestClient, tmp_path: Path) -> None:
    r = client.post(
        "/v1/inspect/metadata", files={"file": ("p.jpg", photo_jpeg(seed=5), "image/jpeg")}
    )
    assert r.status_code == 200, r.text
    assert r.json()["exif"]["Software"] == "GIMP 2.10"
    assert client.get("/v1/analyses").json()["total"] == 0  # nothing analysed or stored
    assert not list((tmp_path / "objects").rglob("*.bin"))
    fake = client.post(
        "/v1/inspect/metadata", files={"file": ("x.jpg", b"plain text", "image/jpeg")}
    )
    assert fake.status_code == 415
    assert client.post("/v1/inspect/metadata", data={"x": "1"}).status_code == 422


def test_metadata_of_an_upload_over_the_memory_budget_is_refused(tmp_path: Path) -> None:
    with make_client(tmp_path, memory_budget_mb=64) as c:
        buf = io.BytesIO()
        Image.new("RGB", (6000, 4000)).save(buf, "PNG")
        r = c.post("/v1/inspect/metadata", files={"file": ("big.png", buf.getvalue(), "image/png")})
        assert r.status_code == 413, r.text


def test_at_most_two_inspect_computations_run_at_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from forenscope.inspect import jpeg_panel
    from forenscope.service import routes_inspect

    a = upload(client, photo_jpeg(seed=6))
    running, peak, lock = [0], [0], threading.Lock()

    def slow_panel(image: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return jpeg_panel(image)

    monkeypatch.setattr(routes_inspect, "jpeg_panel", slow_panel)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: client.get(f"/v1/analyses/{a['id']}/inspect/jpeg")
                              .status_code, range(6)))  # fmt: skip
    assert codes == [200] * 6
    assert peak[0] == routes_inspect.AT_ONCE
