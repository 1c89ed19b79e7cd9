"""Fixtures: a fake upstream and a real gateway (uvicorn, httptools, uvloop) on loopback,
each in a background thread, sharing one migrated SQLite store per test module."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.config import Settings, load_settings
from distillwarden.events.reader import read_events
from distillwarden.gateway.app import GatewayApp, create_app
from distillwarden.gateway.server import http_protocol
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database

from .fake_upstream import FakeUpstream

TEST_SECRET = "test-installation-secret"
TEST_ADMIN_TOKEN = "test-admin-token-0123456789"

UPSTREAM_MODELS = (
    "fake-model",
    "hang-model",
    "garbage-model",
    "error-model",
    "midstream-hang",
    "broken-stream",
    "slow-stream",
    "tool-model",
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving an ASGI app from a daemon thread."""

    def __init__(self, app: Any, port: int, http: Any = "httptools") -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=http,
            loop="uvloop",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=1,
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class Account:
    org_id: str
    key: str
    key_id: str


class Harness:
    """A running gateway with helpers to create accounts and inspect events."""

    def __init__(self, settings: Settings, app: GatewayApp, upstream: FakeUpstream) -> None:
        self.settings = settings
        self.app = app
        self.upstream = upstream
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.engine = make_engine(settings.effective_database_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def account(
        self,
        *,
        models: tuple[str, ...] = ("*",),
        regions: tuple[str, ...] = (),
        licence: bool = True,
        watermark: dict[str, Any] | None = None,
        requests_per_min: int | None = None,
        tokens_per_min: int | None = None,
        key_requests_per_min: int | None = None,
        valid_until: str | None = None,
        channel: str = "direct",
    ) -> Account:
        """A new organization with one key (and a licence), known to the gateway."""
        org_id = "org_" + secrets.token_hex(5)
        with session_scope(self.sessions) as s:
            services.create_org(s, name=f"Test {org_id}", org_id=org_id, actor="test")
            if licence:
                services.set_licence(
                    s,
                    org_id,
                    channel=channel,
                    regions=regions,
                    models=models,
                    watermark=watermark,
                    requests_per_min=requests_per_min,
                    tokens_per_min=tokens_per_min,
                    valid_until=valid_until,
                    actor="test",
                    reason="test licence",
                )
            key_row, key = services.create_api_key(
                s,
                self.settings.secret_bytes(),
                org_id,
                requests_per_min=key_requests_per_min,
                actor="test",
            )
            key_id = key_row.id
        self.wait_for(lambda: self.app.cache.lookup(key) is not None, "the new key")
        return Account(org_id, key, key_id)

    def set_status(self, org_id: str, status: str, **kw: Any) -> None:
        with session_scope(self.sessions) as s:
            services.set_status(
                s, org_id, status, actor="test", reason=kw.pop("reason", "test"), **kw
            )

    def wait_status(self, org_id: str, status: str) -> None:
        self.wait_for(
            lambda: (o := self.app.cache.org(org_id)) is not None and o.status == status,
            f"status {status}",
        )

    @staticmethod
    def wait_for(check: Any, what: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def headers(self, acct: Account, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {acct.key}", **extra}

    def chat(
        self, acct: Account, body: dict[str, Any] | None = None, **hdrs: str
    ) -> httpx.Response:
        payload = body or {
            "model": "fake-model",
            "messages": [{"role": "user", "content": "hello there"}],
        }
        return self.http.post(
            "/v1/chat/completions", json=payload, headers=self.headers(acct, **hdrs)
        )

    def events(self, org_id: str | None = None) -> list[dict[str, Any]]:
        """Every event written so far (flushed to segments first)."""
        self.app.writer.flush()
        rows = read_events(self.settings.effective_events_dir).to_pylist()
        return [r for r in rows if org_id is None or r["org_id"] == org_id]

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def make_settings(data_dir: Path, upstream_port: int, port: int, **over: Any) -> Settings:
    models = [{"name": m, "upstream": "fake"} for m in UPSTREAM_MODELS]
    models.append({"name": "alias-model", "upstream": "fake", "upstream_model": "real-name"})
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "secret": TEST_SECRET,
        "admin_token": TEST_ADMIN_TOKEN,
        "port": port,
        "upstreams": [
            {
                "name": "fake",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "sk-upstream-secret",
                "read_timeout_s": 1.0,
                "connect_timeout_s": 1.0,
            }
        ],
        "models": models,
        "max_body_bytes": 64 * 1024,
        "ip_regions": {"203.0.113.0/24": "CN", "198.51.100.0/24": "EU"},
        "trust_forwarded_for": True,
        "default_region": "US",
    }
    base.update(over)
    return load_settings(None, **base)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeUpstream, int]]:
    app = FakeUpstream()
    port = free_port()
    server = ServerThread(app, port)
    server.start()
    yield app, port
    server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[FakeUpstream, int]
) -> Iterator[Harness]:
    data_dir = tmp_path_factory.mktemp("gw")
    settings = make_settings(data_dir, upstream[1], free_port())
    upgrade_database(settings.effective_database_url)
    app = create_app(settings, body_timeout_s=1.0)
    server = ServerThread(app, settings.port, http=http_protocol())  # as `distillwarden serve`
    server.start()
    harness = Harness(settings, app, upstream[0])
    yield harness
    harness.close()
    server.stop()


@pytest.fixture(scope="module")
def acct(gateway: Harness) -> Account:
    """An active account licensed for every model and region."""
    return gateway.account()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
