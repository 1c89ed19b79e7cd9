"""Upstream clients (one keep-alive pool per configured upstream) and the model routes.

The request body is forwarded as received (``model`` rewritten only when the route maps
it); the client's credentials never are: the upstream gets its own ``api_key``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..config import ModelRoute, Settings, UpstreamSettings
from .accounts import header_safe
from .upstream_http import UpstreamPool, UpstreamResponse

__all__ = ["Route", "UpstreamClient", "build_routes"]

_ENDPOINTS = {
    "/v1/chat/completions": "/chat/completions",
    "/v1/completions": "/completions",
    "/v1/embeddings": "/embeddings",
}


class UpstreamClient:
    """A pooled HTTP client for one upstream, with its fixed request headers precomputed."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.pool = UpstreamPool(
            settings.base_url,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_connections,
        )
        fixed = b"content-type: application/json\r\naccept-encoding: identity\r\n"
        if settings.api_key:
            fixed += (
                b"authorization: Bearer " + header_safe(settings.api_key, 4096).encode() + b"\r\n"
            )
        self.heads = {ep: self.pool.request_head(path) + fixed for ep, path in _ENDPOINTS.items()}
        self.started = False

    async def start(self) -> None:
        """Bind the pool to the running event loop."""
        self.pool.bind(asyncio.get_running_loop())
        self.started = True

    async def close(self) -> None:
        """Close idle connections."""
        await self.pool.close()
        self.started = False

    async def post(self, endpoint: str, headers: bytes, body: bytes) -> UpstreamResponse:
        """POST ``body`` to the upstream's counterpart of ``endpoint`` (e.g. ``/v1/embeddings``)."""
        return await self.pool.post(self.heads[endpoint], headers, body)


def extra_header(name: bytes, value: str) -> bytes:
    """One ``name: value`` header line, safe against CR/LF injection."""
    return name + b": " + header_safe(value, 8192).encode() + b"\r\n"


@dataclass(frozen=True, slots=True)
class Route:
    """Where requests for one client-visible model name go."""

    name: str
    client: UpstreamClient
    upstream_model: str | None
    owned_by: str


def build_routes(settings: Settings) -> tuple[dict[str, UpstreamClient], dict[str, Route]]:
    """Upstream clients by name and routes by client-visible model name."""
    clients = {u.name: UpstreamClient(u) for u in settings.upstreams}
    routes: dict[str, Route] = {}
    for m in settings.models:
        route: ModelRoute = m
        rewrite = route.upstream_model if route.upstream_model not in (None, route.name) else None
        routes[route.name] = Route(route.name, clients[route.upstream], rewrite, route.owned_by)
    return clients, routes
