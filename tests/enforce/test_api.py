"""Enforcement routes of the admin API (through S's create_admin_app and its auth)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.admin import create_admin_app
from distillwarden.config import Settings
from distillwarden.enforce.policy import default_policy_path
from distillwarden.store import services
from distillwarden.store.db import session_scope
from distillwarden.store.models import Finding, Organization


@pytest.fixture
def client(tmp_settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with session_scope(session_factory) as s:
        services.create_org(s, org_id="acme", name="Acme", contact_email="a@acme.test",
                            actor="t")
        services.create_org(s, org_id="vip", name="VIP", tier="strategic", actor="t")
        s.add(Finding(id="f1", org_id="acme", detector="d", risk=8.0, p_value=1e-8,
                      threshold_fpr=0.001))
        s.add(Finding(id="f2", org_id="vip", detector="d", risk=8.0, p_value=1e-8,
                      threshold_fpr=0.001))
    app = create_admin_app(tmp_settings, session_factory)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["authorization"] = f"Bearer {tmp_settings.admin_token}"
        c.headers["x-distillwarden-actor"] = "alice"
        yield c


def test_routes_need_admin_token(client: TestClient) -> None:
    r = client.post("/actions/suspend", json={"org_ids": ["acme"], "reason": "x"},
                    headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_policy_validate_reports_lines(client: TestClient) -> None:
    bad = "name: x\nrules:\n  - id: r\n    description: d\n    severity: high\n" \
          "    when: {risk: {lt: 0.2}}\n    then: {action: suspend}\n"
    body = client.post("/policy/validate", json={"yaml": bad}).json()
    assert body["valid"] is False and body["issues"][0].startswith("<policy>:6:")
    ok = client.post("/policy/validate", json={"yaml": default_policy_path().read_text()})
    assert ok.json()["valid"] is True


def test_dry_run_then_apply_then_case_bundle(client: TestClient,
                                             session_factory: sessionmaker[Session]) -> None:
    dry = client.post("/enforce/apply", json={"dry_run": True})
    assert dry.status_code == 200
    by_org = {p["org_id"]: p for p in dry.json()}
    assert by_org["acme"]["action"] == "suspend" and by_org["vip"]["action"] == "flag"
    with session_factory() as s:
        assert s.get(Organization, "acme").status == "active"
    applied = client.post("/enforce/apply", json={"dry_run": False}).json()
    case_id = next(p["case_id"] for p in applied if p["org_id"] == "acme")
    with session_factory() as s:
        assert s.get(Organization, "acme").status == "suspended"
    assert client.post(f"/cases/{case_id}/notes", json={"text": "looks bad"}).status_code == 201
    r = client.post(f"/cases/{case_id}/files?name=report.json&kind=watermark",
                    content=b'{"p": 1e-9}', headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    dec = client.post(f"/cases/{case_id}/decision",
                      json={"decision": "terminate", "reason": "confirmed distillation"})
    assert dec.status_code == 200, dec.text
    with session_factory() as s:
        assert s.get(Organization, "acme").status == "terminated"
    z = client.get(f"/cases/{case_id}/bundle")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert f"{case_id}/index.html" in names and f"{case_id}/manifest.json" in names
    assert any(n.startswith(f"{case_id}/attachments/") for n in names)


def test_errors_are_json_and_change_nothing(client: TestClient,
                                            session_factory: sessionmaker[Session]) -> None:
    r = client.post("/actions/suspend", json={"org_ids": ["acme", "ghost"], "reason": "x"})
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    with session_factory() as s:
        assert s.get(Organization, "acme").status == "active"
    r = client.post("/webhooks", json={"url": "http://10.0.0.1/hook"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsafe_webhook_destination"
    r = client.post("/policy/activate", json={"yaml": "name: x\nrules: []\n", "reason": "r"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_policy"
    r = client.post("/cases/nope/notes", json={"text": "x"})
    assert r.status_code == 404


def test_cluster_action_and_activation(client: TestClient,
                                       session_factory: sessionmaker[Session]) -> None:
    text = default_policy_path().read_text()
    assert client.post("/policy/activate", json={"yaml": text, "reason": "go live"}).status_code \
        == 200
    assert client.get("/policy").json()["activated_by"] == "admin:alice"
    r = client.post("/actions/throttle", json={"org_ids": ["acme", "vip"], "reason": "load",
                                               "throttle_factor": 0.5})
    assert r.status_code == 200 and all(p["applied"] for p in r.json())
    with session_factory() as s:
        assert s.get(Organization, "vip").throttle_factor == pytest.approx(0.5)


def test_batch_actions_conflict_is_409_or_400_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    r = client.post("/actions", json={"actions": [
        {"action": "suspend", "org_ids": ["acme"], "reason": "x"},
        {"action": "reinstate", "org_ids": ["acme"], "reason": "y"}]})
    assert r.status_code in (400, 409) and r.json()["error"]["code"] == "conflicting_actions"
    with session_factory() as s:
        assert s.get(Organization, "acme").status == "active"
    ok = client.post("/actions", json={"actions": [
        {"action": "warn", "org_ids": ["acme"], "reason": "x"},
        {"action": "flag", "org_ids": ["vip"], "reason": "y"}]})
    assert ok.status_code == 200 and [p["action"] for p in ok.json()] == ["warn", "flag"]
