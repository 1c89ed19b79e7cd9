"""``distillwarden`` command line: one Typer app; each part contributes a sub-app.

Each part owns ``distillwarden.<part>.cli`` exposing ``app`` (a ``typer.Typer``) or
``register(root: typer.Typer)`` for top-level commands. Parts whose optional dependencies
are missing are still listed, with the install hint in their help text.
"""

from __future__ import annotations

import importlib

import typer

from . import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="distillwarden",
    help="Keep your LLM API from quietly training or evaluating a rival model.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (module, how to mount): "register" calls module.register(app); a name mounts module.app.
_PARTS: list[tuple[str, str]] = [
    ("distillwarden.store.cli", "register"),
    ("distillwarden.gateway.cli", "register"),
    ("distillwarden.events.cli", "register"),
    ("distillwarden.detect.cli", "register"),
    ("distillwarden.sim.cli", "register"),
    ("distillwarden.evaluate.cli", "register"),
    ("distillwarden.enforce.cli", "register"),
    ("distillwarden.watermark.cli", "register"),
    ("distillwarden.forensics.cli", "register"),
    ("distillwarden.upstream.cli", "register"),
    ("distillwarden.console.cli", "register"),
    ("distillwarden.demo", "register"),
]


def _mount_parts() -> None:
    for module_name, how in _PARTS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(module_name):
                continue  # part not present in this build
            raise
        if how == "register":
            module.register(app)
        else:
            app.add_typer(module.app, name=how)


@app.callback()
def _root() -> None:
    """Keep your LLM API from quietly training or evaluating a rival model."""


@app.command()
def version() -> None:
    """Print the distillwarden version."""
    typer.echo(__version__)


_mount_parts()


def main() -> None:
    """Console-script entry point."""
    app()
