"""``distillwarden demo``: the whole story end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .runner import DemoError, DemoResult, run_demo

__all__ = ["DemoError", "DemoResult", "register", "run_demo"]


def register(app: typer.Typer) -> None:
    """Add ``distillwarden demo`` to the root CLI."""

    @app.command()
    def demo(
        data_dir: Annotated[
            Path, typer.Option("--data-dir", help="installation folder to create and keep")
        ] = Path("distillwarden-demo"),
        port: Annotated[int, typer.Option(help="gateway port on 127.0.0.1")] = 8080,
        upstream_port: Annotated[int, typer.Option(help="local model port on 127.0.0.1")] = 8001,
        max_tokens: Annotated[
            int, typer.Option(help="tokens the local model generates per request")
        ] = 8,
        keep_running: Annotated[
            bool, typer.Option("--keep-running", help="leave gateway and model up at the end")
        ] = False,
    ) -> None:
        """Run gateway + local model + simulated traffic + detection + enforcement."""
        try:
            run_demo(
                data_dir, port=port, upstream_port=upstream_port, max_tokens=max_tokens,
                keep_running=keep_running,
            )
        except DemoError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
