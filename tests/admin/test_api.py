"""Admin API over HTTP (FastAPI TestClient): auth, CRUD, errors, audit and OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.admin import create_admin_app
from distillwarden.config import Settings
from distillwarden.store.db import session_scope
from distillwarden.store.keys import hash_api_key
from distillwarden.store.models import ApiKey, Case, CaseEntry, Finding, Organization, utcnow


@pytest.fixture
def client(tmp_settings: Settings, store_sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_admin_app(tmp_settings, store_sessions)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["authorization"] = f"Bearer {tmp_settings.admin_token}"
        c.headers["x-distillwarden-actor"] = "alice"
        yield c


def _error(resp: object) -> dict[str, str]:
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    return body["error"]  # type: ignore[no-any-return]


def test_requires_admin_token(client: TestClient) -> None:
    anon = client.get("/orgs", headers={"authorization": ""})
    assert anon.status_code == 401 and _error(anon)["code"] == "missing_admin_token"
    wrong = client.get("/orgs", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and _error(wrong)["code"] == "invalid_admin_token"


def test_customer_key_never_works(client: TestClient) -> None:
    client.post("/orgs", json={"name": "Acme", "id": "acme"})
    created = client.post("/orgs/acme/keys", json={"name": "prod"}).json()
    resp = client.get("/orgs", headers={"authorization": f"Bearer {created['secret']}"})
    assert resp.status_code == 401 and _error(resp)["code"] == "customer_key_not_allowed"


def test_org_lifecycle(
    client: TestClient, tmp_settings: Settings, store_sessions: sessionmaker[Session]
) -> None:
    resp = client.post("/orgs", json={"name": "Acme", "id": "acme", "home_region": "us"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["home_region"] == "US" and resp.json()["licence"] is None

    assert client.post("/orgs", json={"name": "Acme", "id": "acme"}).status_code == 409
    resp = client.patch("/orgs/acme", json={"tier": "strategic", "reason": "enterprise deal"})
    assert resp.status_code == 200 and resp.json()["tier"] == "strategic"
    assert [o["id"] for o in client.get("/orgs").json()["data"]] == ["acme"]

    key = client.post("/orgs/acme/keys", json={"name": "prod", "requests_per_min": 10}).json()
    assert key["secret"].startswith("sk-dw-") and key["key"]["prefix"] == key["secret"][:10]
    listed = client.get("/orgs/acme/keys").json()["data"]
    assert [k["id"] for k in listed] == [key["key"]["id"]]
    assert "secret" not in listed[0] and "key_hash" not in listed[0]
    with session_scope(store_sessions) as s:
        stored = s.get(ApiKey, key["key"]["id"])
        assert stored is not None
        assert stored.key_hash == hash_api_key(tmp_settings.secret_bytes(), key["secret"])

    lic = client.put(
        "/orgs/acme/licence",
        json={
            "channel": "reseller:cloudco",
            "regions": ["US", "de"],
            "permitted_uses": ["inference", "evaluation"],
            "models": ["smollm2-*"],
            "reason": "reseller contract",
        },
    )
    assert lic.status_code == 200, lic.text
    assert lic.json()["regions"] == ["US", "DE"]
    assert client.get("/orgs/acme/licence").json()["channel"] == "reseller:cloudco"
    detail = client.get("/orgs/acme").json()
    assert detail["active_keys"] == 1 and detail["licence"]["name"] == "standard"

    sus = client.post(
        "/orgs/acme/status", json={"status": "suspended", "reason": "pending investigation"}
    )
    assert sus.status_code == 200 and sus.json()["actor"] == "admin:alice"
    with session_scope(store_sessions) as s:
        org = s.get(Organization, "acme")
        assert org is not None and org.status == "suspended"

    term = client.post("/orgs/acme/status", json={"status": "terminated", "reason": "confirmed"})
    assert term.status_code == 200
    assert client.get("/orgs/acme/keys?include_revoked=false").json()["data"] == []
    again = client.post("/orgs/acme/status", json={"status": "active", "reason": "oops"})
    assert again.status_code == 409 and "reinstate" in _error(again)["message"]

    rein = client.post(
        "/orgs/acme/reinstate",
        json={
            "reason": "settled",
            "conditions": "inference only",
            "licence_changes": {"permitted_uses": ["inference"]},
        },
    )
    assert rein.status_code == 200 and rein.json()["new_status"] == "active"
    assert client.get("/orgs/acme/licence").json()["permitted_uses"] == ["inference"]
    assert len(client.get("/orgs/acme/licences").json()["data"]) == 2
    hist = client.get("/orgs/acme/status/history").json()["data"]
    assert [h["new_status"] for h in hist] == ["suspended", "terminated", "active"]

    revoke = client.post(f"/keys/{key['key']['id']}/revoke", json={"reason": "again"})
    assert revoke.status_code == 409


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/orgs/acme/licence", {"channel": "partner", "reason": "r"}, 422, "invalid_input"),
        ("/orgs/acme/licence", {"regions": ["Mars"], "reason": "r"}, 422, "invalid_input"),
        ("/orgs/acme/licence", {"permitted_uses": ["resale"], "reason": "r"}, 422, "invalid_input"),
        ("/orgs/acme/licence", {"reason": "r", "colour": "red"}, 400, "invalid_request"),
        ("/orgs/acme/status", {"status": "banned", "reason": "r"}, 400, "invalid_request"),
        ("/orgs/acme/status", {"status": "warned"}, 400, "invalid_request"),
        ("/orgs/ghost/status", {"status": "warned", "reason": "r"}, 404, "not_found"),
        ("/keys/key_nope/revoke", {"reason": "r"}, 404, "not_found"),
    ],
)
def test_bad_input_is_a_json_error_and_changes_nothing(
    client: TestClient, path: str, body: dict[str, object], status: int, code: str
) -> None:
    client.post("/orgs", json={"name": "Acme", "id": "acme"})
    before = client.get("/audit/verify").json()["count"]
    method = client.put if path.endswith("/licence") else client.post
    resp = method(path, json=body)
    assert resp.status_code == status, resp.text
    assert _error(resp)["code"] == code
    assert client.get("/audit/verify").json()["count"] == before


def test_malformed_json_body(client: TestClient) -> None:
    resp = client.post("/orgs", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and _error(resp)["code"] == "invalid_request"


def test_unknown_route_is_json(client: TestClient) -> None:
    resp = client.get("/nothing-here")
    assert resp.status_code == 404 and _error(resp)["code"] == "not_found"


def test_audit_list_verify_export(
    client: TestClient, store_sessions: sessionmaker[Session]
) -> None:
    client.post("/orgs", json={"name": "Acme", "id": "acme"})
    client.post("/orgs/acme/status", json={"status": "warned", "reason": "templates"})
    entries = client.get("/audit").json()["data"]
    assert [e["action"] for e in entries] == ["org.create", "status.set"]
    assert entries[1]["actor"] == "admin:alice" and entries[1]["prev_hash"] == entries[0]["hash"]
    assert client.get("/audit?after_seq=1").json()["data"][0]["seq"] == 2
    verify = client.get("/audit/verify").json()
    assert verify["ok"] and verify["count"] == 2
    head = client.get("/audit/head").json()
    assert head["seq"] == 2 and head["anchor"] == f"2:{entries[1]['hash']}"
    anchored = client.get("/audit/verify", params={"anchor": head["anchor"]}).json()
    assert anchored["ok"]
    bad_anchor = client.get("/audit/verify", params={"anchor": "2:zz"})
    assert bad_anchor.status_code == 422 and "SEQ:HASH" in _error(bad_anchor)["message"]

    export = client.get("/audit/export")
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert [x["hash"] for x in lines] == [e["hash"] for e in entries]

    with session_scope(store_sessions) as s:
        s.execute(text("UPDATE audit_log SET reason = 'x' WHERE seq = 1"))
    broken = client.get("/audit/verify").json()
    assert not broken["ok"] and broken["first_bad_seq"] == 1


def test_findings_and_cases_read_only(
    client: TestClient, store_sessions: sessionmaker[Session]
) -> None:
    with session_scope(store_sessions) as s:
        s.add(
            Finding(
                id="f1",
                org_id="acme",
                detector="hydra",
                risk=0.97,
                signals={"template_reuse": 0.9},
                evidence={"examples": ["e1"]},
            )
        )
        s.add(
            Case(
                id="case1",
                title="Acme distillation",
                org_id="acme",
                opened_by="alice",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        s.flush()
        s.add(CaseEntry(case_id="case1", kind="note", body={"text": "opened"}, actor="alice"))
    findings = client.get("/findings?org_id=acme").json()["data"]
    assert findings[0]["risk"] == 0.97 and findings[0]["signals"] == {"template_reuse": 0.9}
    assert client.get("/findings?org_id=other").json()["data"] == []
    assert client.get("/cases").json()["data"][0]["id"] == "case1"
    detail = client.get("/cases/case1").json()
    assert detail["entries"][0]["body"] == {"text": "opened"}
    assert client.get("/cases/nope").status_code == 404
    assert client.delete("/orgs/acme").status_code == 405
    with session_scope(store_sessions) as s:
        assert s.scalars(select(Finding)).one().state == "new"


def test_openapi_published(client: TestClient) -> None:
    spec = client.get("/openapi.json", headers={"authorization": ""})
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in (
        "/orgs",
        "/orgs/{org_id}/keys",
        "/orgs/{org_id}/licence",
        "/orgs/{org_id}/status",
        "/audit/verify",
        "/cases/{case_id}",
    ):
        assert path in paths
    assert "HTTPBearer" in spec.json()["components"]["securitySchemes"]


def test_org_sign_up_time_is_validated(client: TestClient) -> None:
    ok = client.post("/orgs", json={"name": "Old", "id": "old",
                                    "metadata": {"signed_up": "2024-05-02T06:30:00Z"}})
    assert ok.status_code == 201, ok.text
    assert ok.json()["metadata"]["signed_up"] == "2024-05-02T06:30:00+00:00"
    for bad in ("last spring", 1714631400):
        resp = client.post("/orgs", json={"name": "Bad", "id": "bad",
                                          "metadata": {"signed_up": bad}})
        assert resp.status_code == 422, resp.text  # the API's status for invalid input
        assert "signed_up" in _error(resp)["message"]
    assert [o["id"] for o in client.get("/orgs").json()["data"]] == ["old"]
