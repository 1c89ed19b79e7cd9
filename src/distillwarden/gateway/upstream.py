"""Connection-pooled clients for OpenAI-compatible upstreams, and the model routing table.

One ``aiohttp.ClientSession`` per upstream (keep-alive pool of ``max_connections``); the
request body is forwarded as received (``model`` rewritten only when the route maps it), the
client's credentials never are: the upstream gets its own ``api_key``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from ..config import ModelRoute, Settings, UpstreamSettings

__all__ = ["Route", "UpstreamClient", "build_routes"]


class UpstreamClient:
    """A pooled HTTP client for one upstream."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        base = settings.base_url.rstrip("/")
        self.urls = {
            "/v1/chat/completions": base + "/chat/completions",
            "/v1/completions": base + "/completions",
            "/v1/embeddings": base + "/embeddings",
        }
        self.base_headers: dict[str, str] = {
            "content-type": "application/json",
            "accept-encoding": "identity",
        }
        if settings.api_key:
            self.base_headers["authorization"] = "Bearer " + settings.api_key
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (inside the running event loop)."""
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections,
            limit_per_host=self.settings.max_connections,
            keepalive_timeout=30.0,
            ttl_dns_cache=300,
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.settings.connect_timeout_s,
            sock_read=self.settings.read_timeout_s,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept"),
        )

    async def close(self) -> None:
        """Close the pool."""
        if self.session is not None:
            await self.session.close()
            self.session = None


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
