"""Keep the :class:`~.accounts.AuthCache` in step with the store.

At start the whole store is loaded; afterwards the ``ChangeFeed`` table is polled every
``settings.status_poll_s`` (and, with Redis, a pub/sub message on ``distillwarden:changes``
triggers an immediate poll) and only the organizations named by new changes are reloaded.
Database work runs in a worker thread; the cache is updated on the event loop, so the hot
path never locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..store.models import ApiKey, ChangeFeed, Licence, Organization
from .accounts import AccountAuth, AuthCache, LicenceView, OrgState, epoch_or_none

__all__ = [
    "CHANGES_CHANNEL",
    "ChangeFeedPoller",
    "load_all",
    "load_orgs",
    "publish_change",
]

CHANGES_CHANNEL = "distillwarden:changes"
#: PostgreSQL NOTIFY channel of the store's change feed (``store.services.CHANGE_CHANNEL``).
PG_CHANNEL = "distillwarden_changes"
_log = logging.getLogger("distillwarden.gateway.sync")
OrgSnapshot = dict[str, tuple[OrgState, list[AccountAuth]]]


def _licence_view(lic: Licence | None) -> LicenceView | None:
    if lic is None:
        return None
    return LicenceView.build(
        licence_id=lic.id,
        name=lic.name,
        channel=lic.channel,
        regions=lic.regions or [],
        permitted_uses=lic.permitted_uses or [],
        models=lic.models or [],
        valid_from=lic.valid_from,
        valid_until=lic.valid_until,
        requests_per_min=lic.requests_per_min,
        tokens_per_min=lic.tokens_per_min,
        watermark=lic.watermark or {},
    )


def _snapshot(session: Session, org_ids: Iterable[str] | None) -> OrgSnapshot:
    org_q = select(Organization)
    key_q = select(ApiKey)
    lic_q = select(Licence).where(Licence.active.is_(True))
    if org_ids is not None:
        ids = list(org_ids)
        org_q = org_q.where(Organization.id.in_(ids))
        key_q = key_q.where(ApiKey.org_id.in_(ids))
        lic_q = lic_q.where(Licence.org_id.in_(ids))
    licences: dict[str, Licence] = {}
    for lic in session.scalars(lic_q.order_by(Licence.created_at)):
        licences[lic.org_id] = lic  # newest active licence wins if several slipped through
    states: OrgSnapshot = {}
    for org in session.scalars(org_q):
        state = OrgState.build(
            org_id=org.id,
            status=org.status,
            status_reason=org.status_reason,
            throttle_factor=org.throttle_factor,
            licence=_licence_view(licences.get(org.id)),
        )
        states[org.id] = (state, [])
    for key in session.scalars(key_q):
        entry = states.get(key.org_id)
        if entry is None:
            continue
        entry[1].append(
            AccountAuth(
                key_id=key.id,
                key_prefix=key.prefix,
                key_hash=key.key_hash,
                expires_at=epoch_or_none(key.expires_at),
                requests_per_min=key.requests_per_min,
                tokens_per_min=key.tokens_per_min,
                org=entry[0],
                revoked=key.revoked_at is not None,
            )
        )
    return states


def load_all(
    factory: sessionmaker[Session], lookback: int = 0
) -> tuple[OrgSnapshot, int, set[int]]:
    """Every organization with its keys (revoked ones marked), the change-feed position this
    reflects and the sequence numbers of the last ``lookback`` changes (already reflected)."""
    with factory() as session:
        seq = int(session.scalar(select(func.max(ChangeFeed.seq))) or 0)
        recent = set(session.scalars(select(ChangeFeed.seq).where(ChangeFeed.seq > seq - lookback)))
        return _snapshot(session, None), seq, recent


def load_orgs(factory: sessionmaker[Session], org_ids: Iterable[str]) -> OrgSnapshot:
    """The current state of some organizations (absent ones are missing from the result)."""
    with factory() as session:
        return _snapshot(session, org_ids)


def _resolve_org_ids(session: Session, subjects: set[str]) -> set[str]:
    """Map change subjects (organization, key or licence ids) to organization ids."""
    if not subjects:
        return set()
    found = set(session.scalars(select(Organization.id).where(Organization.id.in_(subjects))))
    rest = subjects - found
    if rest:
        found.update(session.scalars(select(ApiKey.org_id).where(ApiKey.id.in_(rest))))
        found.update(session.scalars(select(Licence.org_id).where(Licence.id.in_(rest))))
    return found


def _poll_changes(
    factory: sessionmaker[Session], low: int, seen: frozenset[int], limit: int
) -> tuple[list[int], OrgSnapshot, set[str], bool]:
    """Changes after ``low`` not in ``seen``: (their seqs, reloaded orgs, org ids, overflow).

    Reading from below the last applied position catches changes whose transactions
    committed out of sequence order (concurrent writers on PostgreSQL).
    """
    with factory() as session:
        rows = session.execute(
            select(ChangeFeed.seq, ChangeFeed.subject_id)
            .where(ChangeFeed.seq > low)
            .order_by(ChangeFeed.seq)
            .limit(limit)
        ).all()
        new = [(int(r[0]), str(r[1])) for r in rows if int(r[0]) not in seen]
        if not new:
            return [], {}, set(), False
        if len(rows) >= limit:
            return [q for q, _ in new], {}, set(), True
        org_ids = _resolve_org_ids(session, {subject for _, subject in new})
        return [q for q, _ in new], _snapshot(session, org_ids), org_ids, False


class ChangeFeedPoller:
    """Background task applying store changes to an :class:`AuthCache`.

    ``poll_s`` bounds how stale a replica can be; :meth:`nudge` (called on a Redis message
    or a PostgreSQL notification) makes the next poll happen at once; every ``resync_s`` the
    whole store is reloaded as a safety net.
    """

    def __init__(
        self,
        cache: AuthCache,
        factory: sessionmaker[Session],
        *,
        poll_s: float,
        redis_url: str | None = None,
        database_url: str | None = None,
        batch: int = 1000,
        lookback: int = 256,
        resync_s: float = 300.0,
    ) -> None:
        self.cache = cache
        self.factory = factory
        self.poll_s = poll_s
        self.redis_url = redis_url
        self.database_url = database_url
        self.batch = batch
        self.lookback = lookback
        self.resync_s = resync_s
        self._seen: set[int] = set()
        self.position = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def load(self) -> int:
        """Load the whole store into the cache; returns the number of organizations."""
        snapshot, seq, recent = await asyncio.to_thread(load_all, self.factory, self.lookback)
        self.cache.replace_all(snapshot)
        self.position = seq
        self._seen = recent
        return len(snapshot)

    async def poll_once(self) -> int:
        """Apply pending changes; returns how many organizations were reloaded."""
        low = self.position - self.lookback
        seqs, snapshot, org_ids, overflow = await asyncio.to_thread(
            _poll_changes, self.factory, low, frozenset(self._seen), self.batch + self.lookback
        )
        if overflow:
            _log.info(orjson.dumps({"event": "change_feed_resync", "after": low}).decode())
            await self.load()
            return len(self.cache)
        for org_id in org_ids:
            state = snapshot.get(org_id)
            before = self.cache.org(org_id)
            self.cache.replace_org(org_id, state[0] if state else None, state[1] if state else [])
            after = state[0] if state else None
            old_status = before.status if before else None
            new_status = after.status if after else None
            if old_status != new_status:
                _log.info(
                    orjson.dumps(
                        {
                            "event": "account_status_applied",
                            "org_id": org_id,
                            "from": old_status,
                            "to": new_status,
                        }
                    ).decode()
                )
        if seqs:
            self._seen.update(seqs)
            self.position = max(self.position, max(seqs))
            floor = self.position - self.lookback
            self._seen = {q for q in self._seen if q > floor}
        return len(org_ids)

    def nudge(self) -> None:
        """Poll now instead of waiting for the next interval."""
        self._wake.set()

    def start(self) -> None:
        """Start polling (and the Redis subscription when configured)."""
        self._tasks.append(asyncio.get_running_loop().create_task(self._run()))
        if self.redis_url:
            self._tasks.append(asyncio.get_running_loop().create_task(self._subscribe()))
        if self.database_url and self.database_url.startswith("postgresql"):
            self._tasks.append(asyncio.get_running_loop().create_task(self._listen_postgres()))

    async def stop(self) -> None:
        """Stop the background tasks."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _run(self) -> None:
        last_full = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                if time.monotonic() - last_full >= self.resync_s:
                    await self.load()  # safety net for changes made outside the services
                    last_full = time.monotonic()
                else:
                    await self.poll_once()
                self.last_error = None
            except Exception as exc:  # the store may be briefly unreachable: keep serving
                if self.last_error is None:
                    _log.warning(
                        orjson.dumps(
                            {"event": "change_poll_failed", "error": repr(exc)[:500]}
                        ).decode()
                    )
                self.last_error = repr(exc)

    async def _listen_postgres(self) -> None:
        """PostgreSQL stores NOTIFY on every change: poll as soon as one arrives."""
        url = str(self.database_url)
        if url.startswith("postgresql+psycopg://"):
            url = "postgresql://" + url[len("postgresql+psycopg://") :]
        delay = 0.5
        while True:
            try:
                await _pg_listen_once(url, self.nudge)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(
                    orjson.dumps({"event": "pg_listen_failed", "error": repr(exc)[:300]}).decode()
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _subscribe(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.5
        while True:
            client: Any = None
            try:
                client = aioredis.Redis.from_url(str(self.redis_url))
                pubsub = client.pubsub()
                await pubsub.subscribe(CHANGES_CHANNEL)
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.nudge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(
                    orjson.dumps(
                        {"event": "redis_subscribe_failed", "error": repr(exc)[:300]}
                    ).decode()
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()


async def _pg_listen_once(url: str, on_notify: Any) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        await conn.execute(f"LISTEN {PG_CHANNEL}")
        on_notify()  # anything committed while (re)connecting
        async for _ in conn.notifies():
            on_notify()


def publish_change(redis_url: str, kind: str, subject_id: str) -> int:
    """Tell every gateway replica subscribed via Redis that ``subject_id`` changed.

    Call it after committing the change (and its ``ChangeFeed`` row); replicas then reload
    at once instead of at their next poll. Returns the number of replicas that received it.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        payload = orjson.dumps({"kind": kind, "subject_id": subject_id})
        return int(client.publish(CHANGES_CHANNEL, payload))  # type: ignore[arg-type]
    finally:
        client.close()
