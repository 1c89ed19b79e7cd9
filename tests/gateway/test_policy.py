"""Account policy rules as pure functions over cached account state."""

from __future__ import annotations

import time

import pytest

from distillwarden.config import LimitSettings
from distillwarden.gateway.accounts import AccountAuth, AuthCache, LicenceView, OrgState
from distillwarden.gateway.errors import GatewayError
from distillwarden.gateway.policy import authenticate, check_licence, check_use, effective_limits
from distillwarden.store.keys import hash_api_key

SECRET = b"s"


def _licence(**kw) -> LicenceView:
    base = dict(
        licence_id="lic",
        name="standard",
        channel="direct",
        regions=[],
        permitted_uses=["inference"],
        models=["*"],
        valid_from=None,
        valid_until=None,
        requests_per_min=None,
        tokens_per_min=None,
        watermark={},
    )
    base.update(kw)
    return LicenceView.build(**base)


def _auth(
    status: str = "active",
    throttle: float | None = None,
    *,
    key_rpm=None,
    licence: LicenceView | None = None,
    expires_at=None,
    revoked=False,
) -> AccountAuth:
    org = OrgState.build(
        org_id="org_a",
        status=status,
        status_reason="r",
        throttle_factor=throttle,
        licence=licence or _licence(),
    )
    return AccountAuth(
        "key_a",
        "sk-dw-abcd",
        hash_api_key(SECRET, "sk-dw-abcd-secret"),
        expires_at,
        key_rpm,
        None,
        org,
        revoked,
    )


def _cache(auth: AccountAuth) -> AuthCache:
    cache = AuthCache(SECRET)
    cache.replace_org("org_a", auth.org, [auth])
    return cache


def _code(fn, *args) -> str:
    with pytest.raises(GatewayError) as e:
        fn(*args)
    return e.value.code


def test_authenticate_statuses_and_key_states() -> None:
    bearer = b"Bearer sk-dw-abcd-secret"
    assert authenticate(_cache(_auth()), bearer).key_id == "key_a"
    assert authenticate(_cache(_auth()), b"bearer   sk-dw-abcd-secret ").key_id == "key_a"
    assert _code(authenticate, _cache(_auth("suspended")), bearer) == "account_suspended"
    assert (
        _code(authenticate, _cache(_auth("terminated", revoked=True)), bearer)
        == "account_terminated"
    )
    assert _code(authenticate, _cache(_auth(revoked=True)), bearer) == "revoked_api_key"
    assert (
        _code(authenticate, _cache(_auth(expires_at=time.time() - 1)), bearer) == "expired_api_key"
    )
    assert _code(authenticate, _cache(_auth()), b"Bearer other") == "invalid_api_key"
    assert _code(authenticate, _cache(_auth()), None) == "missing_api_key"


def test_cache_replacement_takes_effect_for_memoised_keys() -> None:
    auth = _auth()
    cache = _cache(auth)
    assert cache.lookup("sk-dw-abcd-secret") is auth
    suspended = _auth("suspended")
    cache.replace_org("org_a", suspended.org, [suspended])
    assert cache.lookup("sk-dw-abcd-secret").org.status == "suspended"
    cache.replace_org("org_a", None, [])
    assert cache.lookup("sk-dw-abcd-secret") is None


def test_effective_limits_overrides_and_throttling() -> None:
    d = LimitSettings(
        key_requests_per_min=600,
        key_tokens_per_min=1000,
        org_requests_per_min=3000,
        org_tokens_per_min=5000,
        throttled_factor=0.1,
    )
    lim = effective_limits(d, _auth(key_rpm=60, licence=_licence(requests_per_min=100)))
    assert (lim.key_rpm, lim.key_tpm, lim.org_rpm, lim.org_tpm) == (60, 1000, 100, 5000)
    lim = effective_limits(d, _auth("throttled"))
    assert (lim.key_rpm, lim.org_rpm) == (60, 300)
    lim = effective_limits(d, _auth("throttled", 0.5, licence=_licence(tokens_per_min=0)))
    assert (lim.key_rpm, lim.org_tpm) == (300, 0)  # unlimited stays unlimited


def test_licence_models_regions_dates_and_uses() -> None:
    auth = _auth(licence=_licence(models=["gpt-*", "exact"], regions=["eu", "US"]))
    check_licence(auth, "gpt-4o", "EU")
    check_licence(auth, "exact", "us")
    assert _code(check_licence, auth, "exactly", "EU") == "model_not_licensed"
    assert _code(check_licence, auth, "gpt-4o", "CN") == "region_not_licensed"
    check_licence(auth, "gpt-4o", "DE")  # EU covers its member states
    check_licence(auth, "gpt-4o", "us-ca")  # a country covers its subdivisions
    assert _code(check_licence, auth, "gpt-4o", "GB") == "region_not_licensed"
    check_licence(_auth(licence=_licence(regions=["GLOBAL"])), "m", "JP")
    from datetime import UTC, datetime, timedelta

    past = _auth(licence=_licence(valid_until=datetime.now(UTC) - timedelta(days=1)))
    future = _auth(licence=_licence(valid_from=datetime.now(UTC) + timedelta(days=1)))
    assert _code(check_licence, past, "m", "EU") == "licence_expired"
    assert _code(check_licence, future, "m", "EU") == "licence_not_yet_valid"
    check_use(_auth(), b"Inference")
    assert _code(check_use, _auth(), b"evaluation") == "use_not_permitted"


def test_upstream_headers_carry_org_and_sanitised_watermark() -> None:
    lic = _licence(watermark={"key_id": "k\r\nx-evil: 1", "gamma": 0.25})
    org = OrgState.build(
        org_id="org_a", status="active", status_reason=None, throttle_factor=None, licence=lic
    )
    assert org.upstream_headers.startswith(b"x-distillwarden-org: org_a\r\n")
    assert org.upstream_headers.count(b"\r\n") == 2  # no injected header line
    assert b'"gamma":0.25' in org.upstream_headers
