"""Graduated actions and policy application against a real (SQLite) store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.enforce.actions import (
    ConflictingActions,
    EnforcementError,
    apply_policy,
    take_action,
)
from distillwarden.enforce.policy import default_policy_path, load_policy, parse_policy
from distillwarden.store import audit, services
from distillwarden.store.db import session_scope
from distillwarden.store.errors import InvalidInput, NotFound
from distillwarden.store.models import (
    ApiKey,
    AuditEntry,
    Case,
    ChangeFeed,
    Cluster,
    Finding,
    Organization,
    WebhookDelivery,
)

SECRET = b"s"


def _seed(s: Session) -> None:
    services.create_org(s, org_id="acme", name="Acme", contact_email="ops@acme.test", actor="t")
    services.set_licence(s, "acme", actor="t", reason="signed")
    services.create_org(s, org_id="bigco", name="BigCo", tier="strategic", actor="t")
    for i in range(4):
        services.create_org(s, org_id=f"hydra{i}", name=f"H{i}", actor="t",
                            contact_email=f"h{i}@x.test")
        services.create_api_key(s, SECRET, f"hydra{i}", actor="t")
    s.add(Cluster(id="c1", members=[f"hydra{i}" for i in range(4)], score=0.99))
    s.add(Finding(id="f-h0", org_id="hydra0", cluster_id="c1", detector="distill", risk=3.5,
                  p_value=10**-3.5, threshold_fpr=0.001,
                  signals={"share_cot": {"value": 0.9, "p_value": 1e-4}}))
    s.add(Finding(id="f-acme", org_id="acme", detector="distill", risk=2.5, p_value=10**-2.5,
                  threshold_fpr=0.01))
    s.add(Finding(id="f-big", org_id="bigco", detector="distill", risk=9.0, p_value=1e-9,
                  threshold_fpr=0.001))


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_scope(session_factory) as s:
        _seed(s)
    return session_factory


def _status(db: sessionmaker[Session]) -> dict[str, str]:
    with db() as s:
        return {o.id: o.status for o in s.scalars(select(Organization))}


def _count(db: sessionmaker[Session], model: type) -> int:
    with db() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_default_policy_dry_run_changes_nothing(db: sessionmaker[Session]) -> None:
    policy = load_policy(default_policy_path())
    before, audits = _status(db), _count(db, AuditEntry)
    with session_scope(db) as s:
        plans = apply_policy(s, list(s.scalars(select(Finding))), policy, actor="p",
                             dry_run=True)
    by_org = {p.org_id: p for p in plans}
    assert {f"hydra{i}" for i in range(4)} <= set(by_org)
    assert all(by_org[f"hydra{i}"].action == "suspend" for i in range(4))
    assert by_org["acme"].action == "warn"
    assert by_org["bigco"].action == "flag" and by_org["bigco"].capped_by == "strategic-human-first"
    assert not any(p.applied for p in plans)
    assert _status(db) == before and _count(db, AuditEntry) == audits


def test_default_policy_applies_cluster_suspension_with_audit_case_and_feed(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    policy = load_policy(default_policy_path())
    feed_before = _count(db, ChangeFeed)
    with session_scope(db) as s:
        plans = apply_policy(s, list(s.scalars(select(Finding))), policy, actor="policy:default",
                             outbox_dir=tmp_path / "outbox")
    st = _status(db)
    assert all(st[f"hydra{i}"] == "suspended" for i in range(4))
    assert st["acme"] == "warned" and st["bigco"] == "active"
    assert _count(db, ChangeFeed) >= feed_before + 5
    with db() as s:
        assert audit.verify(s).ok
        actions = [e.action for e in s.scalars(select(AuditEntry))]
        assert actions.count("status.set") == 5 and "policy.apply" in actions
        assert "org.flag" in actions
        cases = list(s.scalars(select(Case)))
        # one case for the whole hydra cluster, one review case for the strategic account
        cluster_cases = [c for c in cases if c.cluster_id == "c1"]
        assert len(cluster_cases) == 1 and cluster_cases[0].org_id is None
        assert {p.case_id for p in plans if p.org_id.startswith("hydra")} == {cluster_cases[0].id}
        assert "bigco" in {c.org_id for c in cases}
        from distillwarden.enforce.cases import timeline

        kinds = [e["kind"] for e in timeline(s, cluster_cases[0].id)]
        assert kinds.count("action") == 4 and kinds.count("finding") == 1
        assert s.get(Finding, "f-h0").state == "actioned"
        assert s.get(Finding, "f-big").state == "flagged"
    # notices: one .eml per contacted account that was warned or suspended
    emls = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 5
    text = next(e for e in emls if "_acme_warn_" in e.name).read_text()
    assert "To: ops@acme.test" in text and "acme" in text
    assert all(p.applied for p in plans if p.skipped is None)
    # idempotent: running again changes nothing (statuses already there)
    with session_scope(db) as s:
        again = apply_policy(s, list(s.scalars(select(Finding))), policy, actor="p")
    assert all(p.skipped or p.action == "flag" for p in again)
    assert _status(db) == st


def test_unknown_org_in_findings_changes_nothing(db: sessionmaker[Session]) -> None:
    policy = load_policy(default_policy_path())
    audits = _count(db, AuditEntry)
    with session_scope(db) as s, pytest.raises(NotFound, match="ghost"):
        apply_policy(s, [{"org_id": "hydra1", "risk": 9.0, "threshold_fpr": 0.001},
                         {"org_id": "ghost", "risk": 9.0}], policy, actor="p")
    assert _status(db)["hydra1"] == "active" and _count(db, AuditEntry) == audits


def test_failure_midway_rolls_back_every_change(
    db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = parse_policy(
        "name: t\nrules:\n  - {id: r, description: d, severity: high, when: {risk: 0.5},"
        " then: {action: suspend}}\n"
    )
    real = services.set_status
    calls = []

    def flaky(session: Session, org_id: str, status: str, **kw: object) -> object:
        calls.append(org_id)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(session, org_id, status, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "set_status", flaky)
    audits, cases = _count(db, AuditEntry), _count(db, Case)
    with db() as s:
        with pytest.raises(RuntimeError):
            apply_policy(s, [{"org_id": "hydra0", "risk": 0.9}, {"org_id": "hydra1", "risk": 0.9}],
                         policy, actor="p")
        # the caller's session is still usable and sees nothing of the first change
        assert s.get(Organization, "hydra0").status == "active"
        s.commit()
    assert calls == ["hydra0", "hydra1"]
    assert _status(db)["hydra0"] == "active"
    assert _count(db, AuditEntry) == audits and _count(db, Case) == cases


def test_manual_cluster_terminate_revokes_every_key(db: sessionmaker[Session]) -> None:
    with session_scope(db) as s:
        plans = take_action(s, "terminate", cluster_id="c1", actor="ana", reason="fraud ring")
    assert len(plans) == 4 and all(p.applied for p in plans)
    with db() as s:
        keys = list(s.scalars(select(ApiKey).where(ApiKey.org_id.like("hydra%"))))
        assert keys and all(k.revoked_at is not None for k in keys)
        assert audit.verify(s).ok


def test_manual_action_on_unknown_account_or_noop_is_an_error(db: sessionmaker[Session]) -> None:
    audits = _count(db, AuditEntry)
    with session_scope(db) as s, pytest.raises(NotFound, match="nobody"):
        take_action(s, "suspend", org_ids=["acme", "nobody"], actor="a", reason="r")
    with session_scope(db) as s:
        take_action(s, "suspend", org_ids=["acme"], actor="a", reason="r")
    audits = _count(db, AuditEntry)
    with session_scope(db) as s, pytest.raises(EnforcementError, match="already suspended"):
        take_action(s, "suspend", org_ids=["acme", "hydra0"], actor="a", reason="r")
    assert _status(db)["hydra0"] == "active" and _count(db, AuditEntry) == audits


def test_conflicting_actions_for_one_account_rejected() -> None:
    from distillwarden.enforce.actions import PlannedAction, _check_conflicts

    plans = [PlannedAction("o", "reinstate", "r", "suspended", "active"),
             PlannedAction("o", "terminate", "r", "suspended", "terminated")]
    with pytest.raises(ConflictingActions, match="reinstated and sanctioned"):
        _check_conflicts(plans)


def test_throttle_then_reinstate_with_stricter_licence(db: sessionmaker[Session]) -> None:
    with session_scope(db) as s:
        take_action(s, "throttle", org_ids=["acme"], actor="a", reason="r", throttle_factor=0.2)
    with db() as s:
        org = s.get(Organization, "acme")
        assert org.status == "throttled" and org.throttle_factor == pytest.approx(0.2)
    with session_scope(db) as s:
        take_action(s, "reinstate", org_ids=["acme"], actor="a", reason="addendum signed",
                    conditions="no use of outputs to train models",
                    licence_changes={"requests_per_min": 60})
    with db() as s:
        lic = services.active_licence(s, "acme")
        assert lic is not None and lic.requests_per_min == 60
        assert lic.conditions == "no use of outputs to train models"
        assert s.get(Organization, "acme").status == "active"


def test_warn_queues_webhook_event_once_per_change(db: sessionmaker[Session]) -> None:
    from distillwarden.enforce.webhooks import add_webhook

    with session_scope(db) as s:
        add_webhook(s, "http://127.0.0.1:9/hook", events=["account.*"], allow_private=True,
                    actor="t")
    with session_scope(db) as s:
        take_action(s, "warn", org_ids=["acme"], actor="a", reason="r")
    with db() as s:
        rows = list(s.scalars(select(WebhookDelivery)))
    assert [r.event for r in rows] == ["account.warn"]
    assert rows[0].payload["org_id"] == "acme" and rows[0].payload["status"] == "warned"


def test_detect_finding_records_as_dicts_are_accepted(db: sessionmaker[Session]) -> None:
    """The JSON form of detect's findings (FindingRecord.as_dict) plans like the rows."""
    record = {
        "id": "fnd_x", "org_id": "hydra2", "cluster_id": "c9", "detector": "distillation",
        "risk": 3.2, "p_value": 10**-3.2, "threshold_fpr": 0.001,
        "signals": {"share_cot": {"p_value": 1e-4, "value": 0.8, "means": "CoT"}},
        "evidence": {"requests": 40, "cluster": {"id": "c9", "size": 5}},
        "window_start": None, "window_end": None,
    }
    policy = load_policy(default_policy_path())
    with db() as s:
        (plan,) = apply_policy(s, [record], policy, actor="p", dry_run=True)
    # cluster c9 is not in the store: the recorded size (5) still makes the cluster rule fire
    assert plan.action == "suspend" and plan.rule_id == "hydra-cluster-suspend"
    with db() as s, pytest.raises(InvalidInput, match="malformed"):
        apply_policy(s, [{"org_id": "acme", "risk": "high"}], policy, actor="p", dry_run=True)


def test_batch_with_conflicting_actions_changes_nothing(db: sessionmaker[Session]) -> None:
    from distillwarden.enforce.actions import ActionRequest, take_actions

    audits = _count(db, AuditEntry)
    with session_scope(db) as s, pytest.raises(ConflictingActions, match="hydra0"):
        take_actions(s, [ActionRequest("suspend", "ring", cluster_id="c1"),
                         ActionRequest("warn", "first offence", org_ids=["hydra0"])], actor="a")
    with session_scope(db) as s, pytest.raises(ConflictingActions, match="several actions"):
        take_actions(s, [ActionRequest("suspend", "x", org_ids=["acme"]),
                         ActionRequest("suspend", "y", org_ids=["acme"])], actor="a")
    assert _count(db, AuditEntry) == audits
    assert set(_status(db).values()) == {"active"}
    with session_scope(db) as s:
        plans = take_actions(s, [ActionRequest("suspend", "ring", cluster_id="c1"),
                                 ActionRequest("warn", "first offence", org_ids=["acme"])],
                             actor="a")
    assert len(plans) == 5 and _status(db)["acme"] == "warned"


def test_strategic_member_of_a_suspended_cluster_goes_to_review(
    db: sessionmaker[Session]
) -> None:
    with session_scope(db) as s:
        services.update_org(s, "hydra1", tier="strategic", actor="t")
    with session_scope(db) as s:
        plans = apply_policy(s, [s.get(Finding, "f-h0")], load_policy(default_policy_path()),
                             actor="policy:default")
    by_org = {p.org_id: p for p in plans}
    assert by_org["hydra1"].action == "flag"
    assert by_org["hydra1"].capped_by == "strategic-human-first"
    st = _status(db)
    assert st["hydra1"] == "active"
    assert all(st[f"hydra{i}"] == "suspended" for i in (0, 2, 3))
