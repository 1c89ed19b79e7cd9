"""Plumbing shared by the parts' CLIs: one way to fail and one way to load settings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from .config import ConfigError, Settings, load_settings

__all__ = ["err_console", "fail", "settings_or_exit"]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def settings_or_exit(config: Path | None) -> Settings:
    """Settings from ``config`` (embedded defaults when None); exit 2 with the reason if bad."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
