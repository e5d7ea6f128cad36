"""Web UI: time to first view after an upload, for a 1 MP and a 12 MP photo, in real Chromium.

    python benchmarks/bench_ui.py [--repeat 1] [--experts all|fast] [--sizes 1,12] [--memory-mb N]

Starts the service in-process (uvicorn on 127.0.0.1, default settings except the memory budget:
the default 1024 MB refuses a 12 MP photo at upload (413, estimated 1.9 GB with two expert
threads), so `--memory-mb` raises it; the server's expert set: every registered expert, or
`fast` = the signal and provenance experts only), opens the UI in
headless Chromium (Playwright) and, per image, measures from the moment the file is handed to
the page:

- first view: the verdict and the picture shown (the browser has decoded the preview);
- 100% view: after clicking "100%", the full-resolution copy decoded in the viewer;
- ELA layer: after choosing ELA, the layer decoded over the picture.

The images are the shipped CC0 photo resized (Lanczos) to about 1 and 12 megapixels, with mild
sensor-like noise, saved as JPEG q90; each run uses new bytes so no stored report is reused.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from forenscope.forgeries import example_photo
from forenscope.service import Settings, create_app

CHROMIUM = os.environ.get("FORENSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FAST = ["ela", "noise", "copy_move", "jpeg_artifacts", "exif", "c2pa", "generator_metadata"]
SIZES = {1: (1155, 866), 12: (4000, 3000)}


def photo_jpeg(width: int, height: int, seed: int) -> bytes:
    img = Image.fromarray(example_photo()).resize((width, height), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)
    noisy = np.asarray(img, np.float32) + rng.normal(0, 2.0, (height, width, 1))
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@contextmanager
def server(data_dir: Path, experts: list[str] | None, memory_mb: int) -> Iterator[str]:
    import uvicorn

    settings = Settings(data_dir=data_dir, analyze_rate_per_min=0, read_rate_per_s=0,
                        experts=experts, memory_budget_mb=memory_mb)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(30)


def measure(page: Any, path: Path) -> dict[str, float]:
    timeout = 600_000
    page.evaluate(
        "() => { document.getElementById('staged-meta').replaceChildren();"
        " document.getElementById('stage-verdict').className = 'pending'; }"
    )
    start = time.perf_counter()
    page.set_input_files("#file", str(path))
    page.wait_for_selector(
        f"#staged-meta h4, #verdict-note:has-text('{path.name}'), #status.error",
        state="attached", timeout=timeout,
    )  # fmt: skip
    staged = time.perf_counter() - start
    page.wait_for_selector(  # the job's staged verdict, before the maps and reports are stored
        f"#stage-verdict:not(.pending), #verdict-note:has-text('{path.name}'), #status.error",
        state="attached", timeout=timeout,
    )  # fmt: skip
    verdict = time.perf_counter() - start
    page.wait_for_selector(f"#verdict-note:has-text('{path.name}'), #status.error", timeout=timeout)
    if page.is_visible("#status.error"):
        raise SystemExit(f"{path.name}: {page.text_content('#status')}")
    page.wait_for_function("() => document.getElementById('photo').naturalWidth > 0",
                           timeout=timeout)  # fmt: skip
    first = time.perf_counter() - start
    start = time.perf_counter()
    page.click("#zoom-100")
    page.wait_for_selector("#viewer[data-full='1']", timeout=timeout)
    full = time.perf_counter() - start
    start = time.perf_counter()
    page.select_option("#layer", "ela")
    page.wait_for_function(
        "() => { const i = document.getElementById('layer-img');"
        " return i.dataset.layer === 'ela' && !i.hidden && i.naturalWidth > 0; }",
        timeout=timeout,
    )
    ela = time.perf_counter() - start
    return {"staged view": staged, "staged verdict": verdict, "first view": first,
            "100% view": full, "ELA layer": ela}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--experts", choices=["all", "fast"], default="all")
    parser.add_argument("--sizes", default="1,12", help="megapixels, from: 1, 12")
    parser.add_argument("--memory-mb", type=int, default=4096, help="the server's memory budget")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    sizes = [int(s) for s in args.sizes.split(",")]
    experts = None if args.experts == "all" else FAST
    rows: dict[int, list[dict[str, float]]] = {mp: [] for mp in sizes}
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(Path(tmp) / "data", experts, args.memory_mb) as url,
    ):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(url + "/")
            for run in range(args.repeat):
                for mp in sizes:
                    path = Path(tmp) / f"photo-{mp}mp-{run}.jpg"
                    path.write_bytes(photo_jpeg(*SIZES[mp], seed=run * 100 + mp))
                    rows[mp].append(measure(page, path))
                    times = ", ".join(f"{k} {v:.2f} s" for k, v in rows[mp][-1].items())
                    print(f"run {run + 1} {mp:>2} MP: {times}", file=sys.stderr)
            browser.close()
    print(f"experts: {args.experts}, memory budget {args.memory_mb} MB, median of {args.repeat}")
    print("| image | staged view (s) | staged verdict (s) | first view (s) | 100% view (s) "
          "| ELA layer (s) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for mp in sizes:
        w, h = SIZES[mp]
        med = {k: statistics.median(r[k] for r in rows[mp]) for k in rows[mp][0]}
        print(f"| {mp} MP ({w}x{h} JPEG) | {med['staged view']:.2f} | "
              f"{med['staged verdict']:.2f} | {med['first view']:.2f} | "
              f"{med['100% view']:.2f} | {med['ELA layer']:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
