"""The enforcement CLI end to end on a temporary installation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.enforce.policy import default_policy_path

runner = CliRunner()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nsecret: s3cret\n")
    return path


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def test_policy_validate_and_test(tmp_path: Path) -> None:
    code, out = run("policy", "validate", str(default_policy_path()))
    assert code == 0 and "valid" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nrules:\n  - id: r\n    description: d\n    severity: high\n"
        "    when: {risk: {lte: 3}}\n    then: {action: suspend}\n"
    )
    code, out = run("policy", "validate", str(bad))
    assert code == 2 and "bad.yaml:6:" in out and "risk" in out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        default_policy_path()
        .read_text()
        .replace(
            "      - finding: {risk: 1.5}\n        expect: flag",
            "      - finding: {risk: 1.5}\n        expect: suspend",
        )
    )
    code, out = run("policy", "test", str(wrong))
    assert code == 1 and "FAIL review-queue example 0" in out and "9/10" in out


def test_actions_cases_and_bundle(cfg: Path, tmp_path: Path) -> None:
    c = str(cfg)
    assert (
        run("org", "create", "Acme", "--id", "acme", "--email", "a@acme.test", "--config", c)[0]
        == 0
    )
    findings = tmp_path / "f.jsonl"
    findings.write_text(json.dumps({"org_id": "acme", "risk": 9.0, "threshold_fpr": 0.001}) + "\n")
    code, out = run(
        "enforce", "apply", "--dry-run", "--findings", str(findings), "--config", c, "--json"
    )
    assert code == 0 and json.loads(out)[0]["action"] == "suspend"
    code, out = run("org", "show", "acme", "--config", c, "--json")
    assert json.loads(out)["status"] == "active"
    code, out = run("enforce", "apply", "--findings", str(findings), "--config", c, "--json")
    case_id = json.loads(out)[0]["case_id"]
    assert code == 0 and case_id
    assert run("case", "note", case_id, "checked the prompts", "--config", c)[0] == 0
    code, out = run("action", "suspend", "acme", "ghost", "-r", "x", "--config", c)
    assert code == 1 and "ghost" in out
    code, out = run("case", "decide", case_id, "terminate", "-r", "confirmed", "--config", c)
    assert code == 0 and "suspended → terminated" in out
    bundle = tmp_path / "bundle"
    assert run("case", "export", case_id, "-o", str(bundle), "--config", c)[0] == 0
    code, out = run("case", "verify-bundle", str(bundle))
    assert code == 0 and "bundle intact" in out
    (bundle / "index.html").write_text("<p>edited</p>")
    code, out = run("case", "verify-bundle", str(bundle))
    assert code == 1 and "index.html" in out
    code, out = run("webhook", "add", "http://192.168.1.10/hook", "--config", c)
    assert code == 1 and "private" in out
    assert list((tmp_path / "data" / "outbox").glob("*_acme_suspend_*.eml"))


def test_webhook_add_warn_and_deliver_signed(tmp_path: Path) -> None:
    from distillwarden.enforce.webhooks import SIGNATURE_HEADER, verify_signature

    from .test_webhooks import Receiver

    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nsecret: s\nwebhooks_allow_private: true\n")
    c = str(cfg)
    receiver = Receiver()
    try:
        code, out = run("webhook", "add", receiver.url, "--event", "account.*", "--config", c)
        assert code == 0
        secret = out.split("signing secret (shown once): ")[1].strip()
        assert run("org", "create", "Acme", "--id", "acme", "--config", c)[0] == 0
        assert run("action", "warn", "acme", "-r", "benchmark scraping", "--config", c)[0] == 0
        code, out = run("webhook", "deliver", "--config", c)
        assert code == 0 and "delivered 1" in out
    finally:
        receiver.close()
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got["headers"].items()}
    verify_signature(secret, got["body"], headers[SIGNATURE_HEADER])
    assert json.loads(got["body"])["data"]["reason"] == "benchmark scraping"


def test_indicators_export_and_import_round_trip(cfg: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from distillwarden.events.writer import write_segment

    c = str(cfg)
    code, out = run("indicators", "export", "-o", str(tmp_path / "x.json"), "--config", c)
    assert code == 1 and "nothing to export" in out
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"event_id": f"e{i}", "ts": t0 + timedelta(seconds=i), "org_id": "ring",
             "endpoint": "/v1/chat/completions", "status": 200,
             "last_user_text": f"Reason step by step, then answer in JSON. Question {i}: why?"}
            for i in range(8)]
    write_segment(tmp_path / "data" / "events", pa.Table.from_pylist(rows))
    assert run("org", "create", "Ring", "--id", "ring", "--config", c)[0] == 0
    bundle = tmp_path / "ring.json"
    code, out = run("indicators", "export", "--org", "ring", "-o", str(bundle), "--tlp", "green",
                    "--producer", "Provider A", "--config", c)
    assert code == 0 and "indicators" in out
    assert "Reason step by step" not in bundle.read_text()
    code, out = run("indicators", "import", str(bundle), "--config", c, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["producer"] == "Provider A" and "ring" in doc["accounts"]


def test_apply_watch_acts_on_findings_as_they_reach_the_store(cfg: Path) -> None:
    from distillwarden.config import load_settings
    from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
    from distillwarden.store.models import Finding

    c = str(cfg)
    assert run("org", "create", "Acme", "--id", "acme", "--config", c)[0] == 0
    code, out = run("enforce", "apply", "--watch", "0.05", "--dry-run", "--config", c)
    assert code == 2 and "--watch" in out
    # nothing new yet: a check that plans nothing prints nothing
    code, out = run("enforce", "apply", "--watch", "0.05", "--runs", "2", "--config", c,
                    "--json")
    assert code == 0 and out.strip() == ""
    engine = make_engine(load_settings(cfg).effective_database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            s.add(Finding(id="f-acme", org_id="acme", detector="d", risk=9.0, p_value=1e-9,
                          threshold_fpr=0.001))
    finally:
        engine.dispose()
    code, out = run("enforce", "apply", "--watch", "0.05", "--runs", "2", "--config", c,
                    "--json")
    assert code == 0 and json.loads(out)[0]["action"] == "suspend"  # acted on once
    code, out = run("org", "show", "acme", "--config", c, "--json")
    assert json.loads(out)["status"] == "suspended"
