"""Mount the admin API (``/admin``) and the analyst console (``/console``) beside the hot path
when those parts are installed, running their ASGI lifespans with the gateway's."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
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
    """Optional sub-applications served under path prefixes."""

    def __init__(self) -> None:
        self._apps: list[tuple[str, Any]] = []
        self._lifespans: list[_Lifespan] = []

    def prefixes(self) -> list[str]:
        return [p for p, _ in self._apps]

    async def start(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        """Import, build and start every available sub-application."""
        for prefix, module_name, factory_name in _CANDIDATES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    continue  # part not installed
                raise
            factory = getattr(module, factory_name, None)
            if factory is None:
                continue
            app = _build(factory, settings, sessions)
            life = _Lifespan(app)
            await life.startup()
            self._lifespans.append(life)
            self._apps.append((prefix, app))
            log_event(_log, "mounted", prefix=prefix, app=f"{module_name}.{factory_name}")

    async def stop(self) -> None:
        for life in reversed(self._lifespans):
            await life.shutdown()
        self._lifespans.clear()
        self._apps.clear()

    def match(self, path: str) -> Any:
        """An ASGI callable serving ``path`` (with ``root_path`` set), or None."""
        for prefix, app in self._apps:
            if path == prefix or path.startswith(prefix + "/"):
                return _Prefixed(app, prefix)
        return None


class _Prefixed:
    """Calls a sub-app with ``root_path`` extended by its mount prefix (ASGI convention:
    ``path`` stays the full path)."""

    __slots__ = ("app", "prefix")

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + self.prefix
        await self.app(child, receive, send)
