"""`forenscope serve`: run the HTTP API and web UI with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .launch import (
    analysis_options,
    analysis_settings,
    server_config,
    service_extra_required,
    token_from_env,
)

if TYPE_CHECKING:
    from .chat import ChatBackend


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; anything but loopback requires a token.")  # fmt: skip
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path),
    default=Path("forenscope-data"), show_default=True,
    help="Where the SQLite store and the report files live.",
)  # fmt: skip
@click.option("--max-upload-mb", default=50, show_default=True, type=click.IntRange(1, 4096),
              help="Largest image upload.")  # fmt: skip
@click.option("--max-clip-mb", default=100, show_default=True, type=click.IntRange(1, 4096),
              help="Largest video clip upload (its duration, frames and pixels are checked "
              "against FORENSCOPE_VIDEO_MAX_* before decoding).")  # fmt: skip
@analysis_options
@click.option("--llm", "llm_config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="LLM config (YAML/JSON): enables /v1/analyses/{id}/chat.")  # fmt: skip
def serve_cmd(
    host: str, port: int, data_dir: Path, max_upload_mb: int, max_clip_mb: int,
    llm_config: str | None, **analysis: Any,
) -> None:  # fmt: skip
    """Serve the API (/v1, OpenAPI at /v1/openapi.json) and the web UI (/).

    The access token is read from the FORENSCOPE_TOKEN environment variable, never from the
    command line (where other users could read it in the process list).
    """
    with service_extra_required():
        import uvicorn

        from . import Settings, create_app
    from ..errors import ConfigError

    token = token_from_env()
    settings = Settings(
        data_dir=data_dir, host=host, port=port, token=token,
        max_upload_bytes=max_upload_mb * 1024 * 1024, max_clip_bytes=max_clip_mb * 1024 * 1024,
        **analysis_settings(**analysis),
    )  # fmt: skip
    try:
        app = create_app(settings, chat_backend=_chat_backend(llm_config))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    auth = "token required" if token else "no token (loopback only)"
    auth += f"; chat via {llm_config}" if llm_config else ""
    click.echo(f"Forenscope on http://{host}:{port}/ ({auth}); data in {data_dir}", err=True)
    config = server_config(
        app, header_timeout_s=settings.header_timeout_s, keep_alive_s=settings.keep_alive_s,
        trusted_proxies=settings.trusted_proxies, host=host, port=port, log_level="warning",
        timeout_graceful_shutdown=30,
    )  # fmt: skip
    uvicorn.Server(config).run()


def _chat_backend(llm_config: str | None) -> ChatBackend | None:
    """The MLLM chat backend for `--llm`, or None (chat then answers 501)."""
    if llm_config is None:
        return None
    from ..mllm.config import load_config
    from .chat import LLMChatBackend

    return LLMChatBackend(load_config(llm_config))  # ConfigError: reported by the caller
