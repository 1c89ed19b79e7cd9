"""The analyst console (server-rendered, Jinja2 + HTMX); mounted by the gateway at
``/console``."""

from .app import create_console_app

__all__ = ["create_console_app"]
