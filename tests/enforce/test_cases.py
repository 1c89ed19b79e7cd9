"""Cases: timeline, evidence from the event log, decisions, and verifiable bundles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.enforce import cases
from distillwarden.enforce.actions import take_action
from distillwarden.enforce.bundle import explain_finding, export_bundle, verify_bundle
from distillwarden.events.writer import write_segment
from distillwarden.store import audit, services
from distillwarden.store.db import session_scope
from distillwarden.store.errors import InvalidInput, InvalidTransition, NotFound
from distillwarden.store.models import Finding, Organization


def _events(directory: Path) -> list[str]:
    rows = []
    for i, org in enumerate(["acme", "acme", "other"]):
        rows.append({
            "event_id": f"evt_{i}", "ts": datetime(2026, 1, 1, 12, i, tzinfo=UTC),
            "org_id": org, "endpoint": "/v1/chat/completions", "status": 200,
            "prompt_text": f"Explain step by step <b>{i}</b>", "response_text": "Step 1…",
            "model": "m", "key_prefix": "sk-dw-abcd",
        })
    write_segment(directory, pa.Table.from_pylist(rows))
    return [r["event_id"] for r in rows]


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_scope(session_factory) as s:
        services.create_org(s, org_id="acme", name="Acme Corp", actor="t")
        services.set_licence(s, "acme", name="standard", channel="reseller:apac", actor="t",
                             reason="contract")
        services.create_org(s, org_id="other", name="Other", actor="t")
        s.add(Finding(id="f1", org_id="acme", detector="distill", risk=6.5, p_value=3e-7,
                      threshold_fpr=0.001,
                      signals={"share_cot": {"value": 0.8, "p_value": 2e-6, "requests": 40,
                                             "means": "share of requests asking for steps",
                                             "example_request_ids": ["evt_0"]}},
                      evidence={"summary": "CoT elicitation on 80% of requests"}))
    return session_factory


def test_case_lifecycle_and_verifiable_bundle(db: sessionmaker[Session], tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    _events(events_dir)
    report = tmp_path / "watermark-report.json"
    report.write_text(json.dumps({"p_value": 1e-12, "account": "acme"}))
    with session_scope(db) as s:
        case = cases.open_case(s, title="Distillation by Acme", org_id="acme",
                               finding_ids=["f1"], actor="ana")
        cid = case.id
        take_action(s, "suspend", org_ids=["acme"], actor="ana", reason="pending review",
                    case_id=cid)
        cases.add_note(s, cid, "Traffic matches the reseller complaint.", actor="ana")
        cases.attach_requests(s, cid, events_dir, ["evt_1", "evt_0"], actor="ana",
                              description="CoT prompts")
        cases.attach_file(s, cid, report, actor="ana", kind="watermark")
        cases.record_response(s, cid, "We only evaluated, we did not train.", actor="ana")
        cases.decide(s, cid, "reinstate_with_conditions", actor="lead",
                     reason="evaluation allowed under addendum",
                     conditions="no training on outputs")
    with db() as s:
        assert s.get(Organization, "acme").status == "active"
        lic = services.active_licence(s, "acme")
        assert lic is not None and lic.conditions == "no training on outputs"
        kinds = [e["kind"] for e in cases.timeline(s, cid)]
        assert kinds[:3] == ["opened", "finding", "action"]
        assert {"note", "requests", "file", "response", "decision"} <= set(kinds)
        assert audit.verify(s).ok
        out = tmp_path / "bundle"
        index = export_bundle(s, cid, out)
    html = index.read_text()
    assert "Distillation by Acme" in html and "evt_1" in html
    assert "&lt;b&gt;1&lt;/b&gt;" in html  # request text is escaped, not rendered
    assert "1 in 3,000,000" in html  # plain-words p-value
    doc = json.loads((out / "case.json").read_text())
    assert [r["event_id"] for r in doc["example_requests"]] == ["evt_1", "evt_0"]
    assert {e["action"] for e in doc["audit"]["entries"]} >= {"status.set", "case.decision",
                                                              "status.reinstate"}
    assert doc["audit"]["chain_verified_at_export"] is True
    res = verify_bundle(out)
    assert res.ok, res.problems
    assert res.audit_entries_checked >= 8 and res.timeline_entries_checked == len(kinds)

    # tampering with any file is caught
    attached = next((out / "attachments").iterdir())
    attached.write_text('{"p_value": 0.5}')
    assert any("attachments/" in p for p in verify_bundle(out).problems)


def test_bundle_detects_edited_audit_entry_even_with_fixed_manifest(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(db) as s:
        cid = cases.open_case(s, title="t", org_id="acme", actor="ana").id
        cases.add_note(s, cid, "first", actor="ana")
    with db() as s:
        export_bundle(s, cid, tmp_path / "b")
    doc_path = tmp_path / "b" / "case.json"
    doc = json.loads(doc_path.read_text())
    doc["timeline"][1]["body"]["text"] = "rewritten"
    doc["audit"]["entries"][0]["actor"] = "someone-else"
    doc_path.write_text(json.dumps(doc))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    import hashlib

    manifest["files"]["case.json"] = hashlib.sha256(doc_path.read_bytes()).hexdigest()
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_bundle(tmp_path / "b").problems
    assert any("audit entry seq" in p for p in problems)
    assert any("timeline entry" in p for p in problems)


def test_requests_from_other_accounts_cannot_be_attached(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    _events(tmp_path / "ev")
    with session_scope(db) as s:
        cid = cases.open_case(s, title="t", org_id="acme", actor="a").id
    with session_scope(db) as s, pytest.raises(NotFound, match="evt_2"):
        cases.attach_requests(s, cid, tmp_path / "ev", ["evt_0", "evt_2"], actor="a")


def test_bad_case_input(db: sessionmaker[Session], tmp_path: Path) -> None:
    with session_scope(db) as s, pytest.raises(NotFound, match="ghost"):
        cases.open_case(s, title="t", org_id="ghost", actor="a")
    with session_scope(db) as s, pytest.raises(NotFound, match="nope"):
        cases.open_case(s, title="t", org_id="acme", finding_ids=["nope"], actor="a")
    with session_scope(db) as s:
        cid = cases.open_case(s, title="t", org_id="acme", actor="a").id
    with session_scope(db) as s, pytest.raises(InvalidInput, match="unknown decision"):
        cases.decide(s, cid, "banish", actor="a", reason="r")
    with session_scope(db) as s:
        cases.decide(s, cid, "keep_suspended", actor="a", reason="r")
    with session_scope(db) as s, pytest.raises(InvalidTransition, match="closed"):
        cases.add_note(s, cid, "late", actor="a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with db() as s, pytest.raises(InvalidInput, match="not empty"):
        export_bundle(s, cid, tmp_path / "full")


def test_explanations_are_plain_words() -> None:
    lines = explain_finding({"risk": 4.7, "p_value": 2e-5, "threshold_fpr": 0.001,
                             "signals": {"share_cot": {"value": 0.75, "p_value": 1e-3,
                                                       "requests": 30, "means": "CoT asks"}}})
    text = " ".join(lines)
    assert "1 in 50,000" in text and "0.10%" in text and "about 1 in 1,000" in text
    assert "Signal share_cot (CoT asks): measured 0.75, in 30 request(s)" in text


def test_case_open_and_decision_are_webhook_events(db: sessionmaker[Session]) -> None:
    from sqlalchemy import select

    from distillwarden.enforce.webhooks import add_webhook
    from distillwarden.store.models import WebhookDelivery

    with session_scope(db) as s:
        add_webhook(s, "http://127.0.0.1:9/h", events=["case.*"], allow_private=True, actor="t")
        cid = cases.open_case(s, title="t", org_id="acme", actor="a").id
        cases.add_note(s, cid, "n", actor="a")
        cases.decide(s, cid, "keep_suspended", actor="a", reason="r")
    with db() as s:
        events = [d.event for d in s.scalars(select(WebhookDelivery).order_by(
            WebhookDelivery.created_at))]
    assert sorted(events) == ["case.decision", "case.opened"]


def test_open_from_finding_takes_its_account(db: sessionmaker[Session]) -> None:
    with session_scope(db) as s:
        case = cases.open_case_from_finding(s, "f1", actor="ana")
        assert case.org_id == "acme" and "risk 6.5" in case.title
        kinds = [e["kind"] for e in cases.timeline(s, case.id)]
    assert kinds == ["opened", "finding"]
    with session_scope(db) as s, pytest.raises(NotFound, match="nope"):
        cases.open_case_from_finding(s, "nope", actor="ana")


def test_bundle_renders_signals_without_examples(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    """Detection names some signals with no example requests (licence, region, channel):
    the bundle must still render them (a demo run found this)."""
    with session_scope(db) as s:
        s.add(Finding(id="f2", org_id="acme", detector="distill", risk=4.9, p_value=1e-5,
                      threshold_fpr=0.001,
                      signals={"region_mismatch": {"value": 1.0, "p_value": 1e-4},
                               "reseller_channel": {"p_value": 2e-3}},
                      evidence={"requests": 12}))
    with session_scope(db) as s:
        cid = cases.open_case(s, title="hydra member", org_id="acme", finding_ids=["f2"],
                              actor="ana").id
    with db() as s:
        index = export_bundle(s, cid, tmp_path / "b")
    html = Path(index).read_text()
    assert "region_mismatch" in html and "reseller_channel" in html
    assert verify_bundle(tmp_path / "b").problems == []
