"""Mount the admin API (``/admin``) and the analyst console (``/console``) beside the hot path
when those parts are installed, running their ASGI lifespans with the gateway's."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ._http import send_bytes
from .errors import error_body
from .logs import log_event

__all__ = ["MountedApps"]

_log = logging.getLogger("distillwarden.gateway")

# (path prefix, module, factory name)
_CANDIDATES = (
    ("/admin", "distillwarden.admin.api", "create_admin_app"),
    ("/console", "distillwarden.console", "create_console_app"),
)


def _build(factory: Any, settings: Settings, sessions: sessionmaker[Session]) -> Any:
    params = inspect.signature(factory).parameters
    if "session_factory" in params or len(params) >= 2:
        return factory(settings, sessions)
    return factory(settings)


class _Lifespan:
    """Drives one sub-application's ASGI lifespan protocol."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self.inbox.get, self.outbox.put)
        except Exception as exc:  # apps without lifespan support raise here: that is fine
            await self.outbox.put({"type": "lifespan.unsupported", "message": repr(exc)})

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await self.outbox.get()
        if msg["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"mounted app failed to start: {msg.get('message')}")
        if msg["type"] == "lifespan.unsupported":
            self.task = None

    async def shutdown(self) -> None:
        if self.task is None:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self.outbox.get(), timeout=10.0)
        except TimeoutError:
            self.task.cancel()


class MountedApps:
    """Optional sub-applications served under path prefixes.

    They are built on their first request, not at start-up: the admin API and the console
    cost tens of MB of memory (FastAPI routes, validators, templates) that a replica serving
    only ``/v1`` never needs.
    """

    def __init__(self) -> None:
        self._available: list[tuple[str, str, str]] = []
        self._apps: dict[str, Any] = {}
        self._lifespans: list[_Lifespan] = []
        self._lock = asyncio.Lock()
        self._settings: Settings | None = None
        self._sessions: sessionmaker[Session] | None = None

    def prefixes(self) -> list[str]:
        """Prefixes whose application is installed (built or not yet)."""
        return [p for p, _, _ in self._available]

    async def start(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        """Find which sub-applications are installed (without importing them)."""
        self._settings, self._sessions = settings, sessions
        for prefix, module_name, factory_name in _CANDIDATES:
            package = module_name.rsplit(".", 1)[0] if module_name.endswith(".api") else module_name
            try:
                found = importlib.util.find_spec(package) is not None
            except (ImportError, ValueError):
                found = False
            if found:
                self._available.append((prefix, module_name, factory_name))

    async def stop(self) -> None:
        for life in reversed(self._lifespans):
            await life.shutdown()
        self._lifespans.clear()
        self._apps.clear()

    def match(self, path: str) -> Any:
        """An ASGI callable serving ``path`` (with ``root_path`` set), or None."""
        for prefix, module_name, factory_name in self._available:
            if path == prefix or path.startswith(prefix + "/"):
                return _Prefixed(self, prefix, module_name, factory_name)
        return None

    async def app_for(self, prefix: str, module_name: str, factory_name: str) -> Any:
        """The built (and started) application for ``prefix``; built on first use."""
        app = self._apps.get(prefix)
        if app is not None:
            return app
        async with self._lock:
            app = self._apps.get(prefix)
            if app is not None:
                return app
            module = importlib.import_module(module_name)
            factory = getattr(module, factory_name)
            assert self._settings is not None and self._sessions is not None
            app = _build(factory, self._settings, self._sessions)
            life = _Lifespan(app)
            await life.startup()
            self._lifespans.append(life)
            self._apps[prefix] = app
            log_event(_log, "mounted", prefix=prefix, app=f"{module_name}.{factory_name}")
            return app


class _Prefixed:
    """Calls a sub-app with ``root_path`` extended by its mount prefix (ASGI convention:
    ``path`` stays the full path)."""

    __slots__ = ("mounts", "prefix", "module_name", "factory_name")

    def __init__(self, mounts: MountedApps, prefix: str, module_name: str, factory_name: str):
        self.mounts = mounts
        self.prefix = prefix
        self.module_name = module_name
        self.factory_name = factory_name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            app = await self.mounts.app_for(self.prefix, self.module_name, self.factory_name)
        except Exception as exc:
            log_event(_log, "mount_failed", logging.ERROR, prefix=self.prefix, error=repr(exc))
            body = error_body(
                503, f"{self.prefix} is unavailable: {exc}"[:500], "mount_unavailable"
            )
            await send_bytes(send, 503, body, [(b"content-type", b"application/json")])
            return
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + self.prefix
        await app(child, receive, send)
