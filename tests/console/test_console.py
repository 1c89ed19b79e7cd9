"""The console over HTTP: login, pages, actions through the services, CSRF, headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount

from distillwarden.config import Settings
from distillwarden.console import create_console_app
from distillwarden.console.auth import COOKIE_NAME, SessionSigner
from distillwarden.store.db import session_scope
from distillwarden.store.models import AuditEntry, Organization

from .seed import seed


@pytest.fixture
def client(tmp_settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    seed(session_factory)
    root = Starlette(routes=[Mount("/console", create_console_app(tmp_settings, session_factory))])
    with TestClient(root, base_url="http://127.0.0.1") as c:
        yield c


def _login(client: TestClient, token: str, name: str = "kim") -> None:
    resp = client.post(
        "/console/login",
        data={"token": token, "name": name, "next": "/accounts"},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/console/accounts"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_pages_need_login(client: TestClient) -> None:
    resp = client.get("/console/accounts/sinoquant", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/login?next=/accounts/sinoquant"
    htmx = client.get("/console/accounts", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.headers["hx-redirect"].startswith("/console/login")


def test_wrong_token_refused(client: TestClient, tmp_settings: Settings) -> None:
    resp = client.post("/console/login", data={"token": "wrong", "name": "x"})
    assert resp.status_code == 401 and "not the admin token" in resp.text
    assert COOKIE_NAME not in resp.cookies
    forged = SessionSigner(tmp_settings.model_copy(update={"admin_token": "other"})).issue("m")
    client.cookies.set(COOKIE_NAME, forged)
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303


def test_accounts_page_ranks_by_risk_and_filters(
    client: TestClient, tmp_settings: Settings
) -> None:
    _login(client, tmp_settings.admin_token or "")
    page = client.get("/console/accounts")
    assert page.status_code == 200
    order = [m for m in re.findall(r'href="/console/accounts/([\w-]+)"', page.text)]
    assert order[0] == "sinoquant" and order[-1] == "notes-app"
    assert "reseller:cloudco" in page.text and "0.98" in page.text
    rows = client.get(
        "/console/accounts?q=hydra", headers={"hx-request": "true", "hx-target": "account-rows"}
    )
    assert "<html" not in rows.text
    assert set(re.findall(r'href="/console/accounts/([\w-]+)"', rows.text)) == {
        "hydra-1",
        "hydra-2",
        "hydra-3",
    }
    assert "Content-Security-Policy".lower() in page.headers
    assert page.headers["x-frame-options"] == "DENY"


def test_account_detail_shows_evidence(client: TestClient, tmp_settings: Settings) -> None:
    _login(client, tmp_settings.admin_token or "")
    page = client.get("/console/accounts/sinoquant")
    assert page.status_code == 200
    for text in (
        "Sinoquant Research",
        "distillation-score",
        "template_reuse",
        "Solve step by step",
        "reseller:cloudco",
        "Sinoquant: suspected distillation",
    ):
        assert text in page.text
    assert client.get("/console/accounts/nobody").status_code == 404


def test_suspend_through_form_records_actor(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    _login(client, tmp_settings.admin_token or "", name="kim")
    csrf = _csrf(client.get("/console/accounts/sinoquant").text)
    resp = client.post(
        "/console/accounts/sinoquant/status",
        data={
            "csrf": csrf,
            "status": "suspended",
            "reason": "pending investigation",
            "case_id": "case_sino",
        },
        headers={"hx-request": "true"},
    )
    assert resp.status_code == 200 and "Status set to suspended" in resp.text
    assert 'id="account-body"' in resp.text and "<html" not in resp.text
    with session_scope(session_factory) as s:
        org = s.get(Organization, "sinoquant")
        assert org is not None and org.status == "suspended"
        assert org.status_actor == "console:kim"
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None and last.action == "status.set" and last.actor == "console:kim"

    bad = client.post(
        "/console/accounts/sinoquant/status",
        data={"csrf": csrf, "status": "suspended", "reason": "again"},
        headers={"hx-request": "true"},
    )
    assert "already suspended" in bad.text

    rein = client.post(
        "/console/accounts/sinoquant/status",
        data={
            "csrf": csrf,
            "status": "reinstate",
            "reason": "settled",
            "conditions": "inference only",
        },
        follow_redirects=False,
    )
    assert rein.status_code == 303
    with session_scope(session_factory) as s:
        assert s.get(Organization, "sinoquant").status == "active"  # type: ignore[union-attr]


def test_action_without_csrf_changes_nothing(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    _login(client, tmp_settings.admin_token or "")
    resp = client.post(
        "/console/accounts/sinoquant/status",
        data={"status": "terminated", "reason": "csrf attempt"},
    )
    assert resp.status_code == 403
    with session_scope(session_factory) as s:
        assert s.get(Organization, "sinoquant").status == "active"  # type: ignore[union-attr]


def test_cluster_action_suspends_every_member(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    _login(client, tmp_settings.admin_token or "")
    page = client.get("/console/clusters")
    assert "cl_hydra" in page.text and "Freelance Dev 2" in page.text
    resp = client.post(
        "/console/clusters/cl_hydra/status",
        data={"csrf": _csrf(page.text), "status": "suspended", "reason": "hydra cluster"},
    )
    assert resp.status_code == 200 and "3 account(s)" in resp.text
    with session_scope(session_factory) as s:
        statuses = {o.id: o.status for o in s.scalars(select(Organization))}
    assert [statuses[f"hydra-{i}"] for i in (1, 2, 3)] == ["suspended"] * 3
    assert statuses["sinoquant"] == "active"


def test_cases_and_audit_pages(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    _login(client, tmp_settings.admin_token or "")
    assert "Sinoquant: suspected distillation" in client.get("/console/cases").text
    case = client.get("/console/cases/case_sino")
    assert "Benchmark sweeps" in case.text and "fnd_sino" in case.text
    audit_page = client.get("/console/audit")
    assert "Chain intact." in audit_page.text and "org.create" in audit_page.text
    with session_scope(session_factory) as s:
        entry = s.get(AuditEntry, 2)
        assert entry is not None
        entry.reason = "tampered"
    partial = client.get("/console/audit", headers={"hx-request": "true", "hx-target": "verify"})
    assert "Chain broken at entry 2" in partial.text and "<table" not in partial.text


def test_static_assets_and_logout(client: TestClient, tmp_settings: Settings) -> None:
    assert "htmx" in client.get("/console/static/htmx.min.js").text[:2000]
    assert ".sidebar" in client.get("/console/static/console.css").text
    _login(client, tmp_settings.admin_token or "")
    csrf = _csrf(client.get("/console/accounts").text)
    out = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303


def test_login_next_is_not_an_open_redirect(client: TestClient, tmp_settings: Settings) -> None:
    resp = client.post(
        "/console/login",
        data={"token": tmp_settings.admin_token, "name": "kim", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/console/accounts"


def test_standalone_app_and_token_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distillwarden.cli import app as cli_app
    from distillwarden.config import load_settings
    from distillwarden.console.cli import create_standalone_app

    config = tmp_path / "c.yaml"
    config.write_text(f"data_dir: {tmp_path / 'd'}\nadmin_token: standalone-token\n")
    result = CliRunner().invoke(cli_app, ["console", "token", "--config", str(config)])
    assert result.exit_code == 0 and result.output.strip() == "standalone-token"
    settings = load_settings(config)
    with TestClient(create_standalone_app(settings)) as c:
        assert c.get("/", follow_redirects=False).headers["location"] == "/console/accounts"
        assert c.get("/console/login").status_code == 200
        auth = {"authorization": "Bearer standalone-token"}
        assert c.get("/admin/orgs", headers=auth).json() == {"data": []}
        assert c.get("/admin/openapi.json").status_code == 200


def test_open_case_add_note_and_download_bundle(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    import io
    import zipfile

    _login(client, tmp_settings.admin_token or "", name="kim")
    page = client.get("/console/accounts/hydra-2")
    assert "Open a case with the latest findings" in page.text
    resp = client.post(
        "/console/accounts/hydra-2/cases",
        data={"csrf": _csrf(page.text), "title": "Hydra member 2"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    case_url = resp.headers["location"]
    case_page = client.get(case_url)
    assert "Hydra member 2" in case_page.text and "hydra-linker" in case_page.text

    note = client.post(
        f"{case_url}/notes",
        data={"csrf": _csrf(case_page.text), "text": "Same /24 as hydra-1"},
        follow_redirects=False,
    )
    assert note.status_code == 303
    assert "Same /24 as hydra-1" in client.get(case_url).text
    empty = client.post(f"{case_url}/notes", data={"csrf": _csrf(case_page.text), "text": " "})
    assert empty.status_code == 422 and "needs text" in empty.text

    bundle = client.get(f"{case_url}/bundle")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert any(n.endswith("index.html") for n in names)
    with session_scope(session_factory) as s:
        actors = {e.actor for e in s.scalars(select(AuditEntry)) if e.action.startswith("case.")}
    assert actors == {"console:kim"}


def test_account_sorting_and_counts(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from distillwarden.console import views
    from distillwarden.store import services

    with session_scope(session_factory) as s:
        services.set_status(s, "hydra-3", "suspended", actor="t", reason="r")
        services.set_status(s, "notes-app", "warned", actor="t", reason="r")
    with session_scope(session_factory) as s:
        by_risk, total = views.account_rows(s)
        assert total == 5 and [r.org.id for r in by_risk][:2] == ["sinoquant", "hydra-1"]
        by_status, _ = views.account_rows(s, sort="status")
        assert [r.org.id for r in by_status][:2] == ["hydra-3", "notes-app"]
        by_name, _ = views.account_rows(s, sort="name")
        assert by_name[0].org.name == "Freelance Dev 1"
        page, total = views.account_rows(s, q="hydra", limit=2)
        assert total == 3 and len(page) == 2
        assert views.overview_counts(s)["suspended"] == 1
    _login(client, tmp_settings.admin_token or "")
    text = client.get("/console/accounts?q=hydra").text
    assert "Showing" not in text


def test_signal_example_requests_come_from_the_event_log(
    client: TestClient, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from distillwarden.events.writer import write_segment
    from distillwarden.store.models import Finding

    now = datetime.now(UTC)
    rows = [
        {
            "event_id": f"evt_{i}",
            "ts": now - timedelta(minutes=i),
            "org_id": org,
            "endpoint": "/v1/chat/completions",
            "model": "smollm2",
            "status": 200,
            "last_user_text": f"Solve step by step: problem {i}",
            "response_text": f"answer {i}",
        }
        for i, org in enumerate(["sinoquant", "sinoquant", "sinoquant", "notes-app"])
    ]
    write_segment(tmp_settings.effective_events_dir, pa.Table.from_pylist(rows))
    with session_scope(session_factory) as s:
        s.add(
            Finding(
                id="fnd_real",
                org_id="sinoquant",
                detector="distillation-detector",
                risk=0.99,
                p_value=1e-6,
                window_start=now - timedelta(hours=1),
                window_end=now,
                signals={
                    "cot_share": {
                        "p_value": 1e-5,
                        "value": 0.9,
                        "requests": 3,
                        "means": "share of chain-of-thought prompts",
                        "example_request_ids": ["evt_0", "evt_2", "evt_3"],
                    }
                },
                evidence={"requests": 3},
                created_at=now + timedelta(seconds=1),
            )
        )
    _login(client, tmp_settings.admin_token or "")
    page = client.get("/console/accounts/sinoquant")
    assert "share of chain-of-thought prompts" in page.text and "Examples (3)" in page.text
    part = client.get(
        "/console/findings/fnd_real/examples?signal=cot_share", headers={"hx-request": "true"}
    )
    assert part.status_code == 200 and "<html" not in part.text
    assert "problem 0" in part.text and "problem 2" in part.text
    assert "problem 3" not in part.text  # another account's request is never shown
    none = client.get("/console/findings/fnd_real/examples?signal=missing")
    assert "no example requests" in none.text
    assert client.get("/console/findings/nope/examples?signal=x").status_code == 404
