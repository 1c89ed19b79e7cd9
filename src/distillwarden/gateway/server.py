"""Run the gateway under uvicorn with the fast HTTP parser and event loop."""

from __future__ import annotations

import functools
from typing import Any

from ..config import Settings
from .errors import error_body

__all__ = ["http_protocol", "run_server"]

_INVALID_HTTP = error_body(
    400, "the request is not valid HTTP/1.1 and could not be parsed", "invalid_http_request"
)


@functools.cache
def http_protocol() -> type[Any]:
    """uvicorn's httptools protocol, except that requests its parser rejects (bad request
    line, malformed header, invalid chunked encoding) get an OpenAI-shaped JSON 400 like
    every other error instead of uvicorn's plain-text one."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class GatewayHttpProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def send_400_response(self, msg: str) -> None:
            content = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(_INVALID_HTTP)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _INVALID_HTTP,
            ])
            self.transport.write(b"".join(content))
            self.transport.close()

    return GatewayHttpProtocol


def run_server(settings: Settings, *, body_timeout_s: float = 30.0, migrate: bool = True) -> None:
    """Serve ``settings`` until interrupted (httptools with OpenAI-shaped parser errors,
    uvloop, no access log)."""
    import uvicorn

    from .app import create_app
    from .logs import configure_logging

    configure_logging(settings.log_level)
    app = create_app(settings, body_timeout_s=body_timeout_s, migrate=migrate)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=http_protocol(),
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
