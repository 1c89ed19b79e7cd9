"""Store services on SQLite and PostgreSQL: validation, transitions, audit and change feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.store import audit, services
from distillwarden.store.db import session_scope
from distillwarden.store.keys import hash_api_key
from distillwarden.store.models import ApiKey, AuditEntry, ChangeFeed, Licence, Organization

SECRET = b"unit-secret"


def _org(factory: sessionmaker[Session], org_id: str = "acme", **kw: object) -> None:
    with session_scope(factory) as s:
        services.create_org(s, name="Acme Corp", org_id=org_id, actor="tester", **kw)  # type: ignore[arg-type]


def test_create_org_appends_audit_and_change_feed(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions, tier="strategic", home_region="us", contact_email="ops@acme.test")
    with session_scope(store_sessions) as s:
        org = services.get_org(s, "acme")
        assert (org.status, org.tier, org.home_region) == ("active", "strategic", "US")
        entries = s.scalars(select(AuditEntry)).all()
        assert [e.action for e in entries] == ["org.create"]
        assert entries[0].prev_hash == audit.GENESIS_HASH
        assert entries[0].payload["name"] == "Acme Corp"
        feed = s.scalars(select(ChangeFeed)).all()
        assert [(f.kind, f.subject_id) for f in feed] == [("org", "acme")]
        assert services.latest_change_seq(s) == feed[0].seq


def test_duplicate_org_is_a_conflict_and_changes_nothing(
    store_sessions: sessionmaker[Session],
) -> None:
    _org(store_sessions)
    with pytest.raises(services.Conflict, match="already exists"):
        _org(store_sessions)
    with session_scope(store_sessions) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"org_id": "bad id!"}, "not a valid id"),
        ({"tier": "Gold Tier"}, "lower-case word"),
        ({"contact_email": "not-an-email"}, "not an e-mail"),
        ({"home_region": "Atlantis"}, "not a region code"),
        ({"name": "  "}, "organization name is required"),
    ],
)
def test_create_org_rejects_bad_input(
    store_sessions: sessionmaker[Session], kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"name": "Acme", "org_id": "acme", **kwargs}
    with pytest.raises(services.InvalidInput, match=message), session_scope(store_sessions) as s:
        services.create_org(s, actor="tester", **args)  # type: ignore[arg-type]
    with session_scope(store_sessions) as s:
        assert s.scalar(select(func.count()).select_from(Organization)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_api_key_is_stored_only_as_hash(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        key, plaintext = services.create_api_key(
            s, SECRET, "acme", name="prod", requests_per_min=60, actor="tester"
        )
        key_id = key.id
    assert plaintext.startswith("sk-dw-") and len(plaintext) > 40
    with session_scope(store_sessions) as s:
        stored = s.get(ApiKey, key_id)
        assert stored is not None
        assert stored.key_hash == hash_api_key(SECRET, plaintext)
        assert stored.prefix == plaintext[:10]
        assert stored.requests_per_min == 60
        dump = str([getattr(stored, c.key) for c in ApiKey.__table__.columns])
        assert plaintext not in dump
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "key.create")).one()
        assert plaintext not in str(entry.payload)


def test_revoke_key_and_revoke_twice(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        key, _ = services.create_api_key(s, SECRET, "acme", actor="tester")
        key_id = key.id
    with session_scope(store_sessions) as s:
        services.revoke_api_key(s, key_id, actor="tester", reason="leaked in a repo")
    with session_scope(store_sessions) as s:
        assert s.get(ApiKey, key_id).revoked_reason == "leaked in a repo"  # type: ignore[union-attr]
        assert services.list_api_keys(s, "acme", include_revoked=False) == []
    with (
        pytest.raises(services.InvalidTransition, match="already revoked"),
        session_scope(store_sessions) as s,
    ):
        services.revoke_api_key(s, key_id, actor="tester", reason="again")
    with (
        pytest.raises(services.NotFound, match="unknown API key"),
        session_scope(store_sessions) as s,
    ):
        services.revoke_api_key(s, "key_missing", actor="tester", reason="x")


def test_key_expiry_in_the_past_rejected(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with (
        pytest.raises(services.InvalidInput, match="in the past"),
        session_scope(store_sessions) as s,
    ):
        services.create_api_key(
            s, SECRET, "acme", expires_at="2001-01-01T00:00:00Z", actor="tester"
        )


def test_licence_replaces_previous_and_normalises(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        first = services.set_licence(s, "acme", actor="tester", reason="signed")
        first_id = first.id
    with session_scope(store_sessions) as s:
        lic = services.set_licence(
            s,
            "acme",
            name="eval-permitted",
            channel="reseller:cloudco",
            regions=["us", "DE", "us"],
            permitted_uses=["inference", "evaluation"],
            models=["smollm2-*"],
            valid_from="2026-01-01",
            valid_until=datetime(2027, 1, 1, tzinfo=UTC),
            requests_per_min=100,
            watermark={"gamma": 0.25},
            actor="tester",
            reason="reseller contract",
        )
        assert lic.regions == ["US", "DE"]
    with session_scope(store_sessions) as s:
        active = services.active_licence(s, "acme")
        assert active is not None and active.channel == "reseller:cloudco"
        assert active.permitted_uses == ["inference", "evaluation"]
        assert s.get(Licence, first_id).active is False  # type: ignore[union-attr]
        assert len(services.list_licences(s, "acme")) == 2
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.payload["replaces"] == first_id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "partner-x"}, "'direct' or 'reseller:<name>'"),
        ({"channel": "reseller:"}, "'direct' or 'reseller:<name>'"),
        ({"regions": ["USA"]}, "not a region code"),
        ({"permitted_uses": ["resale"]}, "unknown permitted use"),
        ({"permitted_uses": []}, "at least one permitted use"),
        ({"models": []}, "at least one model"),
        ({"valid_from": "2027-01-01", "valid_until": "2026-01-01"}, "must be after"),
        ({"valid_from": "yesterday"}, "not an ISO-8601 date"),
        ({"requests_per_min": -5}, ">= 0"),
    ],
)
def test_licence_validation(
    store_sessions: sessionmaker[Session], kwargs: dict[str, object], message: str
) -> None:
    _org(store_sessions)
    with pytest.raises(services.InvalidInput, match=message), session_scope(store_sessions) as s:
        services.set_licence(s, "acme", actor="tester", reason="r", **kwargs)  # type: ignore[arg-type]
    with session_scope(store_sessions) as s:
        assert services.active_licence(s, "acme") is None


def test_register_permitted_use_extends_the_known_set(
    store_sessions: sessionmaker[Session],
) -> None:
    from distillwarden.store import validation

    _org(store_sessions)
    validation.register_permitted_use("synthetic-data-x", "test-only use")
    try:
        with session_scope(store_sessions) as s:
            lic = services.set_licence(
                s, "acme", permitted_uses=["synthetic-data-x"], actor="t", reason="r"
            )
            assert lic.permitted_uses == ["synthetic-data-x"]
    finally:
        validation.PERMITTED_USES.pop("synthetic-data-x")
    with pytest.raises(services.InvalidInput):
        validation.register_permitted_use("Bad Name", "x")


def test_status_lifecycle_and_termination(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        services.set_licence(s, "acme", actor="t", reason="r")
        k1, _ = services.create_api_key(s, SECRET, "acme", actor="t")
        k2, _ = services.create_api_key(s, SECRET, "acme", actor="t")
        keys = [k1.id, k2.id]
    with session_scope(store_sessions) as s:
        services.set_status(s, "acme", "throttled", actor="t", reason="spike", throttle_factor=0.2)
        assert services.get_org(s, "acme").throttle_factor == 0.2
        services.set_status(
            s,
            "acme",
            "suspended",
            actor="analyst",
            reason="pending investigation",
            case_id="case_1",
        )
        org = services.get_org(s, "acme")
        assert (org.status, org.status_actor, org.throttle_factor) == ("suspended", "analyst", None)
    with (
        pytest.raises(services.InvalidTransition, match="already suspended"),
        session_scope(store_sessions) as s,
    ):
        services.set_status(s, "acme", "suspended", actor="t", reason="again")
    with session_scope(store_sessions) as s:
        services.set_status(s, "acme", "terminated", actor="t", reason="confirmed distillation")
    with session_scope(store_sessions) as s:
        assert all(s.get(ApiKey, k).revoked_at is not None for k in keys)  # type: ignore[union-attr]
        history = services.status_history(s, "acme")
        assert [(h.old_status, h.new_status) for h in history] == [
            ("active", "throttled"),
            ("throttled", "suspended"),
            ("suspended", "terminated"),
        ]
        assert history[1].case_id == "case_1"
    for attempt in (
        lambda s: services.set_status(s, "acme", "active", actor="t", reason="oops"),
        lambda s: services.create_api_key(s, SECRET, "acme", actor="t"),
        lambda s: services.set_licence(s, "acme", actor="t", reason="r"),
    ):
        with (
            pytest.raises(services.InvalidTransition, match="terminated"),
            session_scope(store_sessions) as s,
        ):
            attempt(s)


def test_reinstate_with_conditions_creates_new_licence(
    store_sessions: sessionmaker[Session],
) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        services.set_licence(
            s,
            "acme",
            channel="reseller:cloudco",
            regions=["US"],
            permitted_uses=["inference", "evaluation"],
            actor="t",
            reason="r",
        )
        services.set_status(s, "acme", "terminated", actor="t", reason="distillation")
    with session_scope(store_sessions) as s:
        change = services.reinstate(
            s,
            "acme",
            actor="legal",
            reason="settlement",
            conditions="no evaluation use; quarterly audit",
            licence_changes={"permitted_uses": ["inference"], "requests_per_min": 30},
        )
        assert (change.old_status, change.new_status) == ("terminated", "active")
    with session_scope(store_sessions) as s:
        lic = services.active_licence(s, "acme")
        assert lic is not None
        assert lic.permitted_uses == ["inference"] and lic.requests_per_min == 30
        assert lic.channel == "reseller:cloudco" and lic.regions == ["US"]
        assert lic.conditions == "no evaluation use; quarterly audit"
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None and last.action == "status.reinstate"
        assert last.payload["licence_id"] == lic.id
    with (
        pytest.raises(services.InvalidTransition, match="already active"),
        session_scope(store_sessions) as s,
    ):
        services.reinstate(s, "acme", actor="t", reason="again")
    with (
        pytest.raises(services.InvalidInput, match="unknown licence fields"),
        session_scope(store_sessions) as s,
    ):
        services.set_status(s, "acme", "suspended", actor="t", reason="x")
        services.reinstate(s, "acme", actor="t", reason="y", licence_changes={"colour": 1})
    with session_scope(store_sessions) as s:
        assert services.get_org(s, "acme").status == "active"  # rolled back as a whole


@pytest.mark.parametrize(
    ("status", "kwargs", "exc", "message"),
    [
        ("banned", {}, services.InvalidInput, "unknown status"),
        ("warned", {"throttle_factor": 0.5}, services.InvalidInput, "only applies"),
        ("throttled", {"throttle_factor": 1.5}, services.InvalidInput, r"\(0, 1\]"),
        ("warned", {"reason": ""}, services.InvalidInput, "reason is required"),
    ],
)
def test_set_status_rejects_bad_input(
    store_sessions: sessionmaker[Session],
    status: str,
    kwargs: dict[str, object],
    exc: type[Exception],
    message: str,
) -> None:
    _org(store_sessions)
    args: dict[str, object] = {"reason": "r", **kwargs}
    with pytest.raises(exc, match=message), session_scope(store_sessions) as s:
        services.set_status(s, "acme", status, actor="t", **args)  # type: ignore[arg-type]


def test_unknown_org_is_not_found(store_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(services.NotFound, match="org list"), session_scope(store_sessions) as s:
        services.set_status(s, "ghost", "suspended", actor="t", reason="r")


def test_update_org_records_only_changes(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    with session_scope(store_sessions) as s:
        services.update_org(s, "acme", tier="strategic", actor="t")
        services.update_org(s, "acme", tier="strategic", actor="t")  # no change, no entry
    with session_scope(store_sessions) as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert actions == ["org.create", "org.update"]
        assert audit.verify(s).ok


def test_every_change_is_in_a_valid_chain(store_sessions: sessionmaker[Session]) -> None:
    _org(store_sessions)
    _org(store_sessions, org_id="beta")
    with session_scope(store_sessions) as s:
        services.set_licence(
            s, "beta", valid_until=datetime.now(UTC) + timedelta(days=3), actor="t", reason="trial"
        )
        services.set_status(s, "beta", "warned", actor="policy:default", reason="templates")
    with session_scope(store_sessions) as s:
        result = audit.verify(s)
        assert result.ok and result.count == 4
        feed = [f.kind for f in s.scalars(select(ChangeFeed).order_by(ChangeFeed.seq))]
        assert feed == ["org", "org", "licence", "status"]


@pytest.mark.postgres
def test_changes_are_notified_on_postgres(postgres_db_url: str) -> None:
    import psycopg

    from distillwarden.store.db import make_engine, make_sessionmaker
    from distillwarden.store.migrate import upgrade_database

    upgrade_database(postgres_db_url)
    engine = make_engine(postgres_db_url)
    factory = make_sessionmaker(engine)
    with psycopg.connect(postgres_db_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {services.CHANGE_CHANNEL}")
        with pytest.raises(services.InvalidInput), session_scope(factory) as s:
            services.create_org(s, name="Rolled back", org_id="bad id", actor="t")
        _org(factory)
        with session_scope(factory) as s:
            services.set_status(s, "acme", "suspended", actor="t", reason="r")
            seq = services.latest_change_seq(s)
        got = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    engine.dispose()
    assert got[0].endswith(":org:acme")
    assert got[1] == f"{seq}:status:acme"


def test_concurrent_status_changes_do_not_both_apply(store_url: str) -> None:
    import threading

    from distillwarden.store.db import make_engine, make_sessionmaker

    engine = make_engine(store_url)
    factory = make_sessionmaker(engine)
    _org(factory)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def suspend(i: int) -> None:
        barrier.wait()
        try:
            with session_scope(factory) as s:
                services.set_status(s, "acme", "suspended", actor=f"w{i}", reason="race")
            outcomes.append("ok")
        except services.InvalidTransition:
            outcomes.append("already")

    threads = [threading.Thread(target=suspend, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(factory) as s:
        history = services.status_history(s, "acme")
        assert audit.verify(s).ok
    engine.dispose()
    assert sorted(outcomes) == ["already", "already", "already", "ok"]
    assert [(h.old_status, h.new_status) for h in history] == [("active", "suspended")]
