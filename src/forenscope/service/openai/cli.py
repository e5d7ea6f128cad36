"""`forenscope serve-openai`: run the OpenAI-compatible endpoint with uvicorn."""

from __future__ import annotations

import socket
from typing import Any

import click

from ..launch import analysis_options


@click.command("serve-openai")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface; anything but loopback needs FORENSCOPE_TOKEN.")  # fmt: skip
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535),
              help="0 = a free port, printed as 'READY port=N' on stdout.")  # fmt: skip
@click.option("--model-id", default="forenscope", show_default=True,
              help="The model name clients must ask for.")  # fmt: skip
@click.option("--max-image-mb", default=20, show_default=True, type=click.IntRange(1, 1024))
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1))
@click.option("--max-queue", default=4, show_default=True, type=click.IntRange(0, 1024),
              help="Requests waiting for a worker before 503 with Retry-After.")  # fmt: skip
@analysis_options
def serve_openai_cmd(
    host: str, port: int, model_id: str, max_image_mb: int, threshold: float, max_queue: int,
    **analysis: Any,
) -> None:  # fmt: skip
    """Serve Forenscope as an OpenAI-compatible vision model (/v1/chat/completions, /v1/models).

    Send an image as a base64 data URL; the answer is the verdict and explanation (or, for a
    follow-up question in a later turn, where, why, how it was made or how sure), "Yes"/"No" with
    log-probs for yes/no questions, or JSON with a response_format. stream=true sends OpenAI
    chunks; max_tokens cuts the answer. One image is judged per request. Every response also
    carries the full report in `forenscope_report`. The token comes from FORENSCOPE_TOKEN.
    """
    from ..launch import analysis_settings, server_config, service_extra_required, token_from_env

    with service_extra_required():
        import uvicorn

        from .server import OpenAISettings, create_openai_app
    from ...errors import ConfigError, UnknownExpertError

    token = token_from_env()
    settings = OpenAISettings(
        host=host, token=token, model_id=model_id, max_image_bytes=max_image_mb * 1024 * 1024,
        threshold=threshold, max_queue=max_queue, **analysis_settings(**analysis),
    )  # fmt: skip
    try:
        app = create_openai_app(settings)
    except (ConfigError, UnknownExpertError) as exc:
        raise click.ClickException(str(exc)) from None
    # Bind first, so the port is known (and connections queue) before uvicorn starts.
    sock = socket.create_server((host, port), backlog=256)
    bound = sock.getsockname()[1]
    click.echo(f"READY port={bound}")
    click.echo(f"Forenscope OpenAI-compatible API on http://{host}:{bound}/v1", err=True)
    server = uvicorn.Server(server_config(app, log_level="warning"))
    server.run(sockets=[sock])
