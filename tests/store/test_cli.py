"""The store's CLI through Typer's CliRunner: output, --json, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.store.db import make_engine

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\nsecret: cli-test-secret\nadmin_token: cli-admin\n"
    )
    return path


def run(config: Path, *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)])
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


def run_json(config: Path, *args: str) -> object:
    return json.loads(run(config, *args, "--json"))


def test_org_key_licence_status_flow(config: Path) -> None:
    out = run(config, "org", "create", "Acme Analytics", "--id", "acme", "--region", "us")
    assert "created organization acme" in out
    updated = run_json(
        config,
        "org",
        "update",
        "acme",
        "--tier",
        "strategic",
        "--email",
        "ops@acme.example",
        "-r",
        "enterprise deal",
    )
    assert isinstance(updated, dict) and updated["tier"] == "strategic"
    orgs = run_json(config, "org", "list")
    assert isinstance(orgs, list) and [o["id"] for o in orgs] == ["acme"]
    assert orgs[0]["home_region"] == "US" and orgs[0]["licence"] is None

    created = run_json(config, "key", "create", "acme", "--name", "prod", "--rpm", "60")
    assert isinstance(created, dict) and created["secret"].startswith("sk-dw-")
    keys = run_json(config, "key", "list", "acme")
    assert isinstance(keys, list) and keys[0]["requests_per_min"] == 60
    assert created["secret"] not in json.dumps(keys)

    lic = run_json(
        config,
        "licence",
        "set",
        "acme",
        "--channel",
        "reseller:cloudco",
        "--region",
        "US",
        "--region",
        "de",
        "--use",
        "inference",
        "--use",
        "evaluation",
        "--model",
        "smollm2-*",
        "--until",
        "2030-01-01",
        "-r",
        "reseller contract",
    )
    assert isinstance(lic, dict) and lic["regions"] == ["US", "DE"]
    shown = run_json(config, "licence", "show", "acme")
    assert isinstance(shown, dict) and shown["channel"] == "reseller:cloudco"

    out = run(config, "status", "set", "acme", "suspended", "-r", "pending investigation")
    assert "active → suspended" in out
    status = run_json(config, "status", "show", "acme")
    assert isinstance(status, dict) and status["status"] == "suspended"
    assert status["status_actor"].startswith("cli:")

    run(config, "status", "set", "acme", "terminated", "-r", "confirmed", "--actor", "legal")
    assert run_json(config, "key", "list", "acme", "--active") == []
    out = run(config, "status", "set", "acme", "active", "-r", "oops", ok=False)
    assert "only reinstate" in out

    rein = run_json(
        config,
        "status",
        "reinstate",
        "acme",
        "-r",
        "settled",
        "--conditions",
        "inference only",
        "--use",
        "inference",
    )
    assert isinstance(rein, dict) and (rein["from"], rein["to"]) == ("terminated", "active")
    history = run_json(config, "status", "history", "acme")
    assert isinstance(history, list)
    assert [h["to"] for h in history] == ["suspended", "terminated", "active"]
    assert history[1]["actor"] == "legal"
    versions = run_json(config, "licence", "show", "acme", "--history")
    assert isinstance(versions, list) and len(versions) == 2
    assert versions[0]["permitted_uses"] == ["inference"]

    table = run(config, "org", "show", "acme")
    assert "Acme Analytics" in table and "reseller:cloudco" in table and "revoked" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("licence", "set", "acme", "--channel", "partner", "-r", "x"), "reseller:<name>"),
        (("licence", "set", "acme", "--region", "Mars", "-r", "x"), "not a region code"),
        (("licence", "set", "acme", "--use", "resale", "-r", "x"), "unknown permitted use"),
        (("status", "set", "acme", "banned", "-r", "x"), "unknown status"),
        (("status", "set", "ghost", "warned", "-r", "x"), "unknown organization"),
        (("key", "revoke", "key_nope", "-r", "x"), "unknown API key"),
        (("org", "create", "Dup", "--id", "acme"), "already exists"),
        (("org", "create", "Old", "--signed-up", "last spring"), "not an ISO-8601 date"),
    ],
)
def test_errors_exit_1_and_change_nothing(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    run(config, "org", "create", "Acme", "--id", "acme")
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 1
    assert "error:" in result.output and message in " ".join(result.output.split())
    verify = run_json(config, "audit", "verify")
    assert isinstance(verify, dict) and verify["count"] == 1


def test_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: [not a port\n")
    result = runner.invoke(app, ["org", "list", "--config", str(bad)])
    assert result.exit_code == 2 and "not valid YAML" in result.output


def test_audit_verify_export_and_tamper(config: Path, tmp_path: Path) -> None:
    run(config, "org", "create", "Acme", "--id", "acme")
    run(config, "status", "set", "acme", "warned", "-r", "templates")
    run(config, "status", "set", "acme", "suspended", "-r", "pending investigation")
    assert "audit chain intact: 3 entries" in run(config, "audit", "verify")
    shown = run_json(config, "audit", "show", "--limit", "2")
    assert isinstance(shown, list) and [e["seq"] for e in shown] == [2, 3]

    exported = tmp_path / "audit.jsonl"
    run(config, "audit", "export", "--out", str(exported))
    assert len(exported.read_text().splitlines()) == 3
    assert "intact" in run(config, "audit", "verify", "--file", str(exported))

    lines = exported.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["reason"] = "routine"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([lines[0], json.dumps(entry), lines[2]]) + "\n")
    result = runner.invoke(app, ["audit", "verify", "--file", str(tampered)])
    assert result.exit_code == 1 and "BROKEN at seq 2" in result.output

    anchor = run(config, "audit", "head").strip()
    assert anchor.startswith("3:") and len(anchor) == 66
    assert "1 anchor(s) matched" in run(config, "audit", "verify", "--anchor", anchor)
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'distillwarden.db'}")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    assert "intact" in run(config, "audit", "verify")
    result = runner.invoke(app, ["audit", "verify", "--anchor", anchor, "--config", str(config)])
    assert result.exit_code == 1 and "anchor 3 is missing" in result.output
    bad = runner.invoke(app, ["audit", "verify", "--anchor", "nope", "--config", str(config)])
    assert bad.exit_code == 2 and "SEQ:HASH" in bad.output

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 1"))
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert result.exit_code == 1 and "removed" in result.output


def test_db_upgrade(config: Path) -> None:
    assert "is at revision 0001_initial" in run(config, "db", "upgrade")


def test_org_created_with_its_sign_up_time(config: Path) -> None:
    # an account that existed before this store: its sign-up time (not the store's creation
    # time) is what detection reads for sign-up bursts
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from distillwarden.config import load_settings
    from distillwarden.detect.engine import accounts_from_store

    org = run_json(config, "org", "create", "Old Co", "--id", "oldco",
                   "--signed-up", "2024-05-02T08:30:00+02:00")
    assert isinstance(org, dict) and org["metadata"]["signed_up"] == "2024-05-02T06:30:00+00:00"
    run(config, "org", "create", "New Co", "--id", "newco")
    engine = create_engine(load_settings(config).effective_database_url)
    try:
        with Session(engine) as session:
            table = accounts_from_store(session)
    finally:
        engine.dispose()
    created = dict(zip(table.column("org_id").to_pylist(), table.column("created").to_pylist(),
                       strict=True))
    assert created["oldco"].isoformat() == "2024-05-02T06:30:00+00:00"
    assert created["newco"] is None
