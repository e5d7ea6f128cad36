"""When each staged result of an analysis reaches a client of a running `forenscope serve`.

    forenscope serve --port 8765 --data-dir /tmp/bench-stages &
    python benchmarks/bench_stages.py http://127.0.0.1:8765 PHOTO.jpg [PHOTO2.jpg ...]

Each image is uploaded as a one-file job (POST /v1/jobs) and the job is polled every 50 ms
(GET /v1/jobs/{id}); printed, in seconds from sending the upload: the job created, the metadata
panel, the first and last expert, the verdict, the first and last map written, and the stored
analysis (done). Send bytes the server has not analysed before (a stored report is reused).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

POLL_S = 0.05


def follow(client: httpx.Client, path: Path) -> dict[str, float]:
    start = time.perf_counter()
    resp = client.post("/v1/jobs", files={"files": (path.name, path.read_bytes())})
    resp.raise_for_status()
    job = resp.json()
    seen: dict[str, float] = {"job created": time.perf_counter() - start}
    while True:
        status = client.get(f"/v1/jobs/{job['id']}").json()
        now = time.perf_counter() - start
        item = status["items"][0]
        stages = item.get("stages") or {}
        marks = {
            "metadata": stages.get("metadata") is not None,
            "first expert": bool(stages.get("experts")),
            "last expert": bool(stages.get("experts"))
            and len(stages["experts"]) == stages.get("experts_total"),
            "verdict": stages.get("verdict") is not None,
            "first map": bool(stages.get("maps")),
        }
        for name, reached in marks.items():
            if reached:
                seen.setdefault(name, now)
        if item["status"] not in ("queued", "running"):
            if item["status"] != "done":
                raise SystemExit(f"{path.name}: {item['status']} {item.get('error') or ''}")
            seen["done"] = now
            return seen
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8765")
    parser.add_argument("images", nargs="+", type=Path)
    args = parser.parse_args(argv)
    columns = ["job created", "metadata", "first expert", "last expert", "verdict",
               "first map", "done"]  # fmt: skip
    print("| image | " + " | ".join(f"{c} (s)" for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    with httpx.Client(base_url=args.url, timeout=600.0) as client:
        for path in args.images:
            seen = follow(client, path)
            cells = [f"{seen[c]:.2f}" if c in seen else "-" for c in columns]
            print(f"| {path.name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
