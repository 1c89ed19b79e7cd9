"""``distillwarden serve``: run the gateway (uvicorn with httptools and uvloop)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "serve"]


def serve(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default from config)")] = None,
    port: Annotated[int | None, typer.Option(help="port to bind (default from config)")] = None,
    body_timeout: Annotated[
        float, typer.Option(help="seconds a client may take to send its request body")
    ] = 30.0,
) -> None:
    """Serve the OpenAI-compatible gateway (auth, licences, limits, event log).

    The config is checked and the store migrated here; then this process replaces itself
    with the lean server (``python -m distillwarden.gateway``), keeping its PID.
    """
    from ..config import ConfigError, load_settings
    from ..store.migrate import upgrade_database
    from ._memory import PROCESS_ENV

    try:
        settings = load_settings(config, host=host, port=port)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        upgrade_database(settings.effective_database_url)
    except Exception as exc:
        typer.echo(
            f"error: cannot open or migrate the store at {settings.effective_database_url}: {exc}",
            err=True,
        )
        raise typer.Exit(2) from exc
    argv = [sys.executable, "-m", "distillwarden.gateway", "--no-migrate"]
    argv += ["--body-timeout", str(body_timeout)]
    if config is not None:
        argv += ["--config", str(config)]
    if host is not None:
        argv += ["--host", host]
    if port is not None:
        argv += ["--port", str(port)]
    env = {**PROCESS_ENV, **os.environ}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root command."""
    app.command("serve")(serve)
