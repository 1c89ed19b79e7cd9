"""The auth cache follows the change feed, including changes committed out of order."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.config import Settings
from distillwarden.gateway.accounts import AuthCache
from distillwarden.gateway.store_sync import ChangeFeedPoller
from distillwarden.store import services
from distillwarden.store.db import session_scope
from distillwarden.store.models import ChangeFeed, Organization


def _org(sessions: sessionmaker[Session], settings: Settings, org_id: str) -> str:
    with session_scope(sessions) as s:
        services.create_org(s, name=org_id, org_id=org_id, actor="t")
        services.set_licence(s, org_id, actor="t", reason="t")
        _, key = services.create_api_key(s, settings.secret_bytes(), org_id, actor="t")
    return key


async def test_poller_applies_only_changed_orgs_and_late_commits(
    tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    key_a = _org(session_factory, tmp_settings, "org_a")
    key_b = _org(session_factory, tmp_settings, "org_b")
    cache = AuthCache(tmp_settings.secret_bytes())
    poller = ChangeFeedPoller(cache, session_factory, poll_s=10)
    assert await poller.load() == 2
    assert await poller.poll_once() == 0  # nothing new: the recent window is already applied

    with session_scope(session_factory) as s:
        services.set_status(s, "org_a", "suspended", actor="t", reason="t")
    assert await poller.poll_once() == 1
    assert cache.lookup(key_a).org.status == "suspended"
    assert cache.lookup(key_b).org.status == "active"

    # a change with a *lower* sequence number becomes visible only now (a transaction that
    # took its number earlier but committed later, as happens with concurrent writers)
    with session_scope(session_factory) as s:
        s.execute(update(Organization).where(Organization.id == "org_b").values(status="warned"))
        s.add(ChangeFeed(seq=poller.position - 1000 + 1, kind="status", subject_id="org_b"))
    poller.lookback = 2000
    assert await poller.poll_once() == 1
    assert cache.lookup(key_b).org.status == "warned"
    assert await poller.poll_once() == 0
