"""Operations endpoints: health, readiness, Prometheus metrics, admin mount."""

from __future__ import annotations

from .conftest import Account, Harness


def test_healthz_and_readyz(gateway: Harness) -> None:
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    r = gateway.http.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {
        "started": True,
        "store": True,
        "event_writer": True,
        "upstreams": True,
    }


def test_metrics_count_requests_rejections_and_queue(gateway: Harness, acct: Account) -> None:
    before = gateway.http.get("/metrics").text
    gateway.chat(acct)
    gateway.http.post("/v1/chat/completions", json={}, headers={"Authorization": "Bearer bad"})
    text = gateway.http.get("/metrics").text
    assert gateway.http.get("/metrics").headers["content-type"].startswith("text/plain")

    def value(t: str, prefix: str) -> float:
        for line in t.splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ok = (
        'distillwarden_requests_total{route="/v1/chat/completions",model="fake-model",status="200"}'
    )
    assert value(text, ok) == value(before, ok) + 1
    bad = 'distillwarden_rejections_total{reason="invalid_api_key"}'
    assert value(text, bad) == value(before, bad) + 1
    assert "distillwarden_request_duration_seconds_bucket{" in text
    assert 'le="+Inf"' in text
    assert "distillwarden_event_queue_depth " in text
    assert "distillwarden_event_lag_seconds " in text


def test_admin_api_is_mounted_and_its_changes_reach_the_hot_path(gateway: Harness) -> None:
    if "/admin" not in gateway.app.mounts.prefixes():
        import pytest

        pytest.skip("the admin API part is not installed")
    admin = {"Authorization": f"Bearer {gateway.settings.admin_token}"}
    acct = gateway.account()
    r = gateway.http.get(f"/admin/orgs/{acct.org_id}", headers=admin)
    assert r.status_code == 200, r.text
    assert gateway.http.get("/admin/openapi.json").status_code == 200
    # customer keys do not work on the admin API
    assert gateway.http.get("/admin/orgs", headers=gateway.headers(acct)).status_code in (401, 403)
