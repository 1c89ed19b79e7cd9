"""Committed changes are pushed to gateways over Redis (admin API, CLI); failures to push
never fail the change."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from distillwarden.admin import create_admin_app
from distillwarden.cli import app as cli_app
from distillwarden.config import Settings
from distillwarden.gateway.store_sync import CHANGES_CHANNEL
from distillwarden.store import services
from distillwarden.store.push import announce, run_and_announce

pytestmark = pytest.mark.redis


@pytest.fixture
def subscriber(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANGES_CHANNEL)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    yield pubsub
    pubsub.close()
    client.close()


def _messages(pubsub: Any, n: int, timeout: float = 5.0) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg and msg["type"] == "message":
            out.append(json.loads(msg["data"]))
    return out


def test_admin_api_pushes_after_commit(
    tmp_settings: Settings,
    session_factory: sessionmaker[Session],
    redis_url: str,
    subscriber: Any,
) -> None:
    settings = tmp_settings.model_copy(update={"redis_url": redis_url})
    with TestClient(create_admin_app(settings, session_factory)) as client:
        client.headers["authorization"] = f"Bearer {settings.admin_token}"
        client.post("/orgs", json={"name": "Acme", "id": "acme"})
        client.post("/orgs/acme/status", json={"status": "suspended", "reason": "r"})
        bad = client.post("/orgs/acme/status", json={"status": "suspended", "reason": "r"})
        assert bad.status_code == 409
    got = _messages(subscriber, 3, timeout=2.0)
    assert got == [{"kind": "org", "subject_id": "acme"}, {"kind": "status", "subject_id": "acme"}]


def test_cli_pushes_after_commit(tmp_path: Path, redis_url: str, subscriber: Any) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"data_dir: {tmp_path / 'd'}\nsecret: s\nredis_url: {redis_url}\n")
    runner = CliRunner()
    for args in (
        ["org", "create", "Acme", "--id", "acme"],
        ["status", "set", "acme", "warned", "-r", "templates"],
    ):
        result = runner.invoke(cli_app, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output
    assert [m["kind"] for m in _messages(subscriber, 2)] == ["org", "status"]


def test_rolled_back_changes_are_not_pushed(
    session_factory: sessionmaker[Session], redis_url: str, subscriber: Any
) -> None:
    def fails(s: Session) -> None:
        services.create_org(s, name="Acme", org_id="acme", actor="t")
        raise services.InvalidInput("stop")

    with pytest.raises(services.InvalidInput):
        run_and_announce(session_factory, redis_url, fails)
    assert _messages(subscriber, 1, timeout=1.0) == []


def test_push_failure_is_not_an_error() -> None:
    assert announce("redis://127.0.0.1:1/0", [("status", "acme")]) == 0
    assert announce(None, [("status", "acme")]) == 0
