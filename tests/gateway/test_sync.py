"""Store changes reach the gateway's cache (poll, and Redis push). How fast is measured by
bench/enforce/propagation.py, not here: timed asserts are flaky on a shared machine."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from distillwarden.gateway import publish_change
from distillwarden.gateway.app import create_app
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database

from .conftest import Harness, ServerThread, free_port, make_settings
from .fake_upstream import FakeUpstream


def _time_until_403(gateway_url: str, key: str, timeout_s: float = 5.0) -> float:
    t0 = time.monotonic()
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client() as c:
        while time.monotonic() - t0 < timeout_s:
            r = c.post(
                gateway_url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            if r.status_code == 403:
                return time.monotonic() - t0
            time.sleep(0.01)
    raise AssertionError("status change never reached the gateway")


def test_suspension_reaches_gateway_by_polling(gateway: Harness) -> None:
    acct = gateway.account()
    assert gateway.chat(acct).status_code == 200
    gateway.set_status(acct.org_id, "suspended", reason="poll test")
    # no push channel here: only the change-feed poll can deliver it
    _time_until_403(gateway.base_url, acct.key, timeout_s=15.0)


def test_new_key_and_licence_change_are_picked_up(gateway: Harness) -> None:
    acct = gateway.account(models=("fake-model",))
    r = gateway.chat(acct, {"model": "alias-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 403
    with session_scope(gateway.sessions) as s:
        services.set_licence(s, acct.org_id, models=("*",), actor="t", reason="upgrade")
    gateway.wait_for(
        lambda: gateway.app.cache.org(acct.org_id).licence.allows_model("alias-model"), "licence"
    )
    r = gateway.chat(acct, {"model": "alias-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200


@pytest.mark.redis
def test_redis_push_reaches_replicas_faster_than_the_poll(
    tmp_path: Path, redis_url: str, upstream: tuple[FakeUpstream, int]
) -> None:
    settings = make_settings(
        tmp_path, upstream[1], free_port(), redis_url=redis_url, status_poll_s=30.0
    )
    upgrade_database(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as s:
        services.create_org(s, name="r", org_id="org_redis", actor="t")
        services.set_licence(s, "org_redis", actor="t", reason="t")
        _, key = services.create_api_key(s, settings.secret_bytes(), "org_redis", actor="t")
    server = ServerThread(create_app(settings), settings.port)
    server.start()
    try:
        url = f"http://127.0.0.1:{settings.port}"
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(
            url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
        time.sleep(0.3)  # let the subscription settle
        with session_scope(sessions) as s:
            services.set_status(s, "org_redis", "suspended", actor="t", reason="push")
        assert publish_change(redis_url, "status", "org_redis") >= 1
        # the poll interval is 30 s: arriving well before it proves the push delivered it
        assert _time_until_403(url, key, timeout_s=15.0) < 10.0
    finally:
        server.stop()
        engine.dispose()


@pytest.mark.postgres
def test_postgres_notify_reaches_the_gateway_faster_than_the_poll(
    tmp_path: Path, postgres_db_url: str, upstream: tuple[FakeUpstream, int]
) -> None:
    settings = make_settings(
        tmp_path, upstream[1], free_port(), database_url=postgres_db_url, status_poll_s=30.0
    )
    upgrade_database(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as s:
        services.create_org(s, name="p", org_id="org_pg", actor="t")
        services.set_licence(s, "org_pg", actor="t", reason="t")
        _, key = services.create_api_key(s, settings.secret_bytes(), "org_pg", actor="t")
    server = ServerThread(create_app(settings), settings.port)
    server.start()
    try:
        url = f"http://127.0.0.1:{settings.port}"
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(
            url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
        time.sleep(0.3)  # let LISTEN settle
        with session_scope(sessions) as s:
            services.set_status(s, "org_pg", "suspended", actor="t", reason="notify")
        # the poll interval is 30 s: arriving well before it proves the push delivered it
        assert _time_until_403(url, key, timeout_s=15.0) < 10.0
    finally:
        server.stop()
        engine.dispose()
