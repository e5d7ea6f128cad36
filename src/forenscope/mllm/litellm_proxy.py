"""LiteLLM's proxy as a real process on 127.0.0.1, for tests and benchmarks of the MLLM tier.

LiteLLM is not a dependency of Forenscope (its proxy pins versions that clash with ours); it is
found in its own environment: `FORENSCOPE_LITELLM=/path/to/bin/litellm`, else the checkout's
`.venv-litellm/bin/litellm` (`python3 -m venv .venv-litellm && .venv-litellm/bin/pip install
'litellm[proxy]'`), else `litellm` on PATH. The proxy runs offline: the model cost map is the
packaged one (`LITELLM_LOCAL_MODEL_COST_MAP`), telemetry is off, and every model either answers
with a `mock_response` or forwards to a loopback endpoint. Its master key is random per process
and passed through the environment only, never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

LITELLM_ENV = "FORENSCOPE_LITELLM"
START_TIMEOUT_S = 120.0  # its imports alone take ~10 s on a loaded 2-core machine


# A checkout's own LiteLLM environment (`python -m venv .venv-litellm`), next to `.venv`.
CHECKOUT_VENV = Path(__file__).resolve().parents[3] / ".venv-litellm" / "bin" / "litellm"


def find_litellm() -> str | None:
    """The `litellm` executable: $FORENSCOPE_LITELLM, else the checkout's `.venv-litellm`, else
    on PATH; None when absent."""
    given = os.environ.get(LITELLM_ENV, "").strip()
    if given:
        return given if Path(given).is_file() else None
    if CHECKOUT_VENV.is_file():
        return str(CHECKOUT_VENV)
    return shutil.which("litellm")


def mock_model(name: str, answer: str) -> dict[str, Any]:
    """A proxy model that answers `answer` to every request, without any backend."""
    return {"model_name": name,
            "litellm_params": {"model": "openai/mock", "api_key": "unused",
                               "mock_response": answer}}  # fmt: skip


def forward_model(name: str, base_url: str, backend_model: str) -> dict[str, Any]:
    """A proxy model forwarded to an OpenAI-compatible endpoint on loopback."""
    return {"model_name": name,
            "litellm_params": {"model": f"openai/{backend_model}", "api_base": base_url,
                               "api_key": "unused"}}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiteLLMProxy:
    """`litellm --config` with `models` on a free loopback port; `key_env` names the variable
    that holds its master key for clients (set in this process's environment while it runs)."""

    def __init__(
        self, models: list[dict[str, Any]], *, key_env: str = "FORENSCOPE_TEST_LITELLM_KEY"
    ) -> None:
        exe = find_litellm()
        if exe is None:
            raise FileNotFoundError(f"litellm not found: set {LITELLM_ENV} or put it on PATH")
        self.dir = Path(tempfile.mkdtemp(prefix="forenscope-litellm-"))
        config = self.dir / "config.yaml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps({"model_list": models, "litellm_settings": {
            "telemetry": False}}), encoding="utf-8")  # fmt: skip
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.key_env = key_env
        key = "sk-" + secrets.token_hex(16)
        env = {**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR"}  # fmt: skip
        self._previous_key = os.environ.get(key_env)
        os.environ[key_env] = key
        cmd = [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
               "--num_workers", "1"]  # fmt: skip
        self.log = (self.dir / "proxy.log").open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{self.port}/health/liveliness"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"litellm exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError(f"litellm did not start in {START_TIMEOUT_S:.0f} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        path = self.dir / "proxy.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the proxy and workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()
        if self._previous_key is None:
            os.environ.pop(self.key_env, None)
        else:
            os.environ[self.key_env] = self._previous_key
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LiteLLMProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
