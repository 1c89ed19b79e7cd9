"""Rate limits: leaky buckets per key and organization, headers, 429, Redis sharing."""

from __future__ import annotations

import asyncio

import pytest

from distillwarden.gateway.limits import (
    EffectiveLimits,
    LocalRateLimiter,
    RedisRateLimiter,
    format_reset,
)

from .conftest import Harness


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _h(result) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in result.headers}


def test_requests_per_minute_admits_limit_then_refuses_then_refills() -> None:
    clock = Clock()
    lim = LocalRateLimiter(clock)
    limits = EffectiveLimits(key_rpm=6, key_tpm=0, org_rpm=0, org_tpm=0)
    results = [lim.acquire_now("k", "o", limits, 10) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 6 + [False]
    assert _h(results[0])["x-ratelimit-remaining-requests"] == "5"
    assert _h(results[5])["x-ratelimit-remaining-requests"] == "0"
    refused = results[6]
    assert refused.scope == "key" and refused.dimension == "requests"
    assert refused.retry_after_s == pytest.approx(10.0)  # one request drains in 60/6 s
    assert "x-ratelimit-limit-tokens" not in _h(refused)  # unlimited dimension: no header
    clock.t += 10.0
    assert lim.acquire_now("k", "o", limits, 10).allowed


def test_org_limit_binds_across_keys_and_tighter_scope_is_reported() -> None:
    lim = LocalRateLimiter(Clock())
    limits = EffectiveLimits(key_rpm=100, key_tpm=0, org_rpm=3, org_tpm=0)
    for key in ("a", "b", "c"):
        r = lim.acquire_now(key, "org", limits, 1)
        assert r.allowed
        assert _h(r)["x-ratelimit-limit-requests"] == "3"
    r = lim.acquire_now("d", "org", limits, 1)
    assert not r.allowed and r.scope == "organization"


def test_tokens_estimate_is_settled_to_actual_usage() -> None:
    clock = Clock()
    lim = LocalRateLimiter(clock)
    limits = EffectiveLimits(key_rpm=0, key_tpm=1000, org_rpm=0, org_tpm=0)
    assert lim.acquire_now("k", "o", limits, 900).allowed
    assert not lim.acquire_now("k", "o", limits, 200).allowed
    lim.settle_now("k", "o", limits, -850)  # the request really used 50 tokens
    r = lim.acquire_now("k", "o", limits, 200)
    assert r.allowed
    assert _h(r)["x-ratelimit-remaining-tokens"] == "750"


def test_reset_format() -> None:
    assert format_reset(0.12) == "120ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(360.0) == "6m0s"


def test_gateway_sends_headers_and_429_with_retry_after(gateway: Harness) -> None:
    acct = gateway.account(key_requests_per_min=3)
    rs = [gateway.chat(acct) for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert rs[0].headers["x-ratelimit-limit-requests"] == "3"
    assert rs[0].headers["x-ratelimit-remaining-requests"] == "2"
    assert rs[0].headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-remaining-tokens" in rs[0].headers
    err = rs[3].json()["error"]
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "rate_limit_exceeded"
    assert int(rs[3].headers["retry-after"]) >= 1
    assert rs[3].headers["x-ratelimit-remaining-requests"] == "0"


def test_gateway_token_limit(gateway: Harness) -> None:
    acct = gateway.account(tokens_per_min=60)
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "y" * 400}]}
    r = gateway.chat(acct, body)
    assert r.status_code == 429
    assert "tokens" in r.json()["error"]["message"]


@pytest.mark.redis
def test_redis_limiter_is_shared_between_replicas(redis_url: str) -> None:
    async def scenario() -> list[bool]:
        a, b = RedisRateLimiter(redis_url, prefix="t1:"), RedisRateLimiter(redis_url, prefix="t1:")
        limits = EffectiveLimits(key_rpm=4, key_tpm=0, org_rpm=0, org_tpm=0)
        out = []
        for i in range(6):
            lim = a if i % 2 else b
            out.append((await lim.acquire("k", "o", limits, 5)).allowed)
        await a.close()
        await b.close()
        return out

    assert asyncio.run(scenario()) == [True, True, True, True, False, False]


@pytest.mark.redis
def test_redis_limiter_settles_tokens_and_reports_headers(redis_url: str) -> None:
    async def scenario() -> tuple[bool, bool, dict[str, str]]:
        lim = RedisRateLimiter(redis_url, prefix="t2:")
        limits = EffectiveLimits(key_rpm=0, key_tpm=1000, org_rpm=0, org_tpm=500)
        first = await lim.acquire("k", "o", limits, 450)
        second = await lim.acquire("k", "o", limits, 100)
        await lim.settle("k", "o", limits, -400)
        third = await lim.acquire("k", "o", limits, 100)
        await lim.close()
        return first.allowed, second.allowed, _h(third) if third.allowed else {}

    first, second, headers = asyncio.run(scenario())
    assert first and not second
    assert headers["x-ratelimit-limit-tokens"] == "500"  # the org bucket is the tighter
    assert int(headers["x-ratelimit-remaining-tokens"]) in range(345, 351)


def test_redis_limiter_falls_back_when_redis_is_down() -> None:
    async def scenario() -> bool:
        lim = RedisRateLimiter("redis://127.0.0.1:1/0")
        limits = EffectiveLimits(key_rpm=2, key_tpm=0, org_rpm=0, org_tpm=0)
        r = await lim.acquire("k", "o", limits, 1)
        await lim.close()
        return r.allowed and bool(r.headers)

    assert asyncio.run(scenario())


@pytest.mark.redis
def test_two_gateway_replicas_share_limits_through_redis(
    tmp_path, redis_url: str, upstream
) -> None:
    import httpx

    from distillwarden.gateway.app import create_app
    from distillwarden.store import services
    from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
    from distillwarden.store.migrate import upgrade_database

    from .conftest import ServerThread, free_port, make_settings

    first = make_settings(tmp_path, upstream[1], free_port(), redis_url=redis_url)
    second = first.model_copy(update={"port": free_port()})
    upgrade_database(first.effective_database_url)
    engine = make_engine(first.effective_database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        services.create_org(s, name="r", org_id="org_shared", actor="t")
        services.set_licence(s, "org_shared", actor="t", reason="t")
        _, key = services.create_api_key(
            s, first.secret_bytes(), "org_shared", requests_per_min=3, actor="t"
        )
    engine.dispose()
    servers = [ServerThread(create_app(st), st.port) for st in (first, second)]
    for server in servers:
        server.start()
    try:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
        codes = []
        for i in range(4):
            port = (first, second)[i % 2].port
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429]
    finally:
        for server in servers:
            server.stop()
