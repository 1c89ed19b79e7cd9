"""Sub-applications are built on first use; a broken one answers 503, not a crash."""

from __future__ import annotations

import sys
import types

import httpx
import pytest

from distillwarden.gateway import _mounts
from distillwarden.gateway._mounts import MountedApps


@pytest.fixture
def fake_parts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"built": 0, "startup": 0}

    def create_ok(settings, session_factory):
        calls["built"] += 1

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while True:
                    msg = await receive()
                    if msg["type"] == "lifespan.startup":
                        calls["startup"] += 1
                        await send({"type": "lifespan.startup.complete"})
                    else:
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            body = f"{scope['root_path']}|{scope['path']}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        return app

    def create_broken(settings, session_factory):
        raise RuntimeError("templates missing")

    for name, factory in (("dw_fake_ok", create_ok), ("dw_fake_broken", create_broken)):
        module = types.ModuleType(name)
        module.create = factory  # type: ignore[attr-defined]
        module.__spec__ = types.SimpleNamespace(name=name)  # type: ignore[assignment]
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(
        _mounts,
        "_CANDIDATES",
        (("/ok", "dw_fake_ok", "create"), ("/broken", "dw_fake_broken", "create")),
    )
    monkeypatch.setattr(_mounts.importlib.util, "find_spec", lambda name: object())
    return calls


async def test_mounts_are_lazy_prefixed_and_fail_soft(fake_parts: dict[str, int]) -> None:
    mounts = MountedApps()
    await mounts.start(settings=object(), sessions=object())  # type: ignore[arg-type]
    assert mounts.prefixes() == ["/ok", "/broken"]
    assert fake_parts["built"] == 0  # nothing built before the first request

    async def app(scope, receive, send):
        await mounts.match(scope["path"])(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/ok/orgs")
        assert (r.status_code, r.text) == (200, "/ok|/ok/orgs")
        await client.get("/ok/again")
        assert fake_parts == {"built": 1, "startup": 1}
        r = await client.get("/broken/x")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "mount_unavailable"
        assert "templates missing" in r.json()["error"]["message"]
    assert mounts.match("/okay") is None
    await mounts.stop()
