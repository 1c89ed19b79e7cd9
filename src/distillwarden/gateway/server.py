"""Run the gateway under uvicorn with the fast HTTP parser and event loop."""

from __future__ import annotations

from ..config import Settings

__all__ = ["run_server"]


def run_server(settings: Settings, *, body_timeout_s: float = 30.0, migrate: bool = True) -> None:
    """Serve ``settings`` until interrupted (httptools, uvloop, no access log)."""
    import uvicorn

    from .app import create_app
    from .logs import configure_logging

    configure_logging(settings.log_level)
    app = create_app(settings, body_timeout_s=body_timeout_s, migrate=migrate)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For is honoured only with trust_forwarded_for
        date_header=False,
        timeout_graceful_shutdown=10,
    )
