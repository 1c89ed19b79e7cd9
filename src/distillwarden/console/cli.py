"""``distillwarden console serve|token``: the console and admin API without the gateway.

The gateway already serves both at ``/console`` and ``/admin``; ``console serve`` is for an
analyst workstation or a separate admin host pointed at the same store (e.g. PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..config import Settings

__all__ = ["create_standalone_app", "register"]

console_app = typer.Typer(help="The analyst console (web).", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
]


def register(app: typer.Typer) -> None:
    """Add ``distillwarden console …`` to the root app."""
    app.add_typer(console_app, name="console")


def create_standalone_app(settings: Settings) -> Starlette:
    """An ASGI app serving the console at ``/console`` and the admin API at ``/admin``."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    from ..admin import create_admin_app
    from ..store.db import make_engine, make_sessionmaker
    from .app import create_console_app

    sessions = make_sessionmaker(make_engine(settings.effective_database_url))

    async def root(_: object) -> RedirectResponse:
        return RedirectResponse("/console/accounts", status_code=303)

    return Starlette(
        routes=[
            Route("/", root),
            Mount("/admin", create_admin_app(settings, sessions)),
            Mount("/console", create_console_app(settings, sessions)),
        ]
    )


def _load(config: Path | None) -> Settings:
    from ..config import ConfigError, load_settings
    from ..store.migrate import upgrade_database

    try:
        settings = load_settings(config)
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
    return settings


@console_app.command("serve")
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8090,
) -> None:
    """Serve the console (/console) and the admin API (/admin) on their own."""
    import uvicorn

    settings = _load(config)
    typer.echo(
        f"console: http://{host}:{port}/console  (sign in with the admin token; "
        "`distillwarden console token` prints it)"
    )
    uvicorn.run(create_standalone_app(settings), host=host, port=port, log_level="warning")


@console_app.command("token")
def token(config: ConfigOpt = None) -> None:
    """Print the admin token the console and the admin API accept."""
    settings = _load(config)
    typer.echo(settings.admin_token or "")
