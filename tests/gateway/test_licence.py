"""Account status and licence enforcement on the hot path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from distillwarden.store import services
from distillwarden.store.db import session_scope

from .conftest import Harness


def test_suspended_account_gets_403_account_suspended(gateway: Harness) -> None:
    acct = gateway.account()
    assert gateway.chat(acct).status_code == 200
    gateway.set_status(acct.org_id, "suspended", reason="distillation investigation")
    gateway.wait_status(acct.org_id, "suspended")
    r = gateway.chat(acct)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "account_suspended" and err["type"] == "permission_error"
    # reinstated: served again
    with session_scope(gateway.sessions) as s:
        services.reinstate(s, acct.org_id, actor="test", reason="cleared")
    gateway.wait_status(acct.org_id, "active")
    assert gateway.chat(acct).status_code == 200


def test_terminated_account_gets_403_account_terminated(gateway: Harness) -> None:
    acct = gateway.account()
    gateway.set_status(acct.org_id, "terminated", reason="confirmed distillation")
    gateway.wait_status(acct.org_id, "terminated")
    r = gateway.chat(acct)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "account_terminated"


def test_model_outside_licence_is_403(gateway: Harness) -> None:
    acct = gateway.account(models=("alias-*",))
    r = gateway.chat(acct)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "model_not_licensed"
    ok = gateway.chat(
        acct, {"model": "alias-model", "messages": [{"role": "user", "content": "x"}]}
    )
    assert ok.status_code == 200


def test_region_from_header_and_from_ip_ranges(gateway: Harness) -> None:
    acct = gateway.account(regions=("EU", "US"))
    assert gateway.chat(acct, **{"x-distillwarden-region": "eu"}).status_code == 200
    r = gateway.chat(acct, **{"x-distillwarden-region": "CN"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "region_not_licensed"
    # no header: X-Forwarded-For (trusted in this config) mapped by ip_regions
    r = gateway.chat(acct, **{"x-forwarded-for": "203.0.113.7, 10.0.0.1"})
    assert r.status_code == 403 and "CN" in r.json()["error"]["message"]
    assert gateway.chat(acct, **{"x-forwarded-for": "198.51.100.3"}).status_code == 200
    # neither: the default region (US)
    assert gateway.chat(acct).status_code == 200
    regions = {e["region"] for e in gateway.events(acct.org_id)}
    assert regions == {"eu", "EU", "US"}


def test_expired_licence_and_missing_licence_are_403(gateway: Harness) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    acct = gateway.account(valid_until=soon)
    assert gateway.chat(acct).status_code == 200
    gateway.wait_for(lambda: gateway.chat(acct).status_code == 403, "licence expiry", 10)
    assert gateway.chat(acct).json()["error"]["code"] == "licence_expired"
    bare = gateway.account(licence=False)
    r = gateway.chat(bare)
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_active_licence"


def test_throttled_account_gets_scaled_limits(gateway: Harness) -> None:
    acct = gateway.account(requests_per_min=100, key_requests_per_min=1000)
    r = gateway.chat(acct)
    assert r.headers["x-ratelimit-limit-requests"] == "100"
    gateway.set_status(acct.org_id, "throttled", throttle_factor=0.05)
    gateway.wait_status(acct.org_id, "throttled")
    r = gateway.chat(acct)
    assert r.headers["x-ratelimit-limit-requests"] == "5"
    codes = [gateway.chat(acct).status_code for _ in range(6)]
    assert 429 in codes


def test_declared_use_must_be_permitted(gateway: Harness) -> None:
    acct = gateway.account()  # the default licence permits inference only
    assert gateway.chat(acct, **{"x-distillwarden-use": "inference"}).status_code == 200
    r = gateway.chat(acct, **{"x-distillwarden-use": "fine-tuning-data"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "use_not_permitted"
